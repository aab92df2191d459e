"""Home Assistant's MQTT discovery: the robot as one device with its parts.

Sent retained to <discovery_prefix>/device/<robot_id>/config, and again when
Home Assistant's <discovery_prefix>/status says online.
"""

from __future__ import annotations

from typing import Any

from anse_hw import __version__
from anse_hw.kinds import SENSOR_KINDS
from anse_hw.model import Config

DEVICE_CLASS = {
    "distance": "distance",
    "temperature": "temperature",
    "humidity": "humidity",
    "voltage": "voltage",
    "current": "current",
    "pressure": "atmospheric_pressure",
}
HA_UNIT = {"°C": "°C", "%": "%", "cm": "cm", "V": "V", "A": "A", "hPa": "hPa"}


def discovery(config: Config, base: str) -> dict[str, Any]:
    """Home Assistant's device-based discovery payload: one device, its parts,
    whose topics are under `base` (<topic_prefix>/<robot_id>)."""
    rid = config.mqtt.robot_id
    components: dict[str, dict[str, Any]] = {}
    for sensor in config.sensors:
        kind = SENSOR_KINDS[sensor.type]
        state = {
            "state_topic": f"{base}/sensor/{sensor.name}",
            "name": sensor.name,
            "unique_id": f"anse_{rid}_{sensor.name}",
        }
        if kind.binary:
            components[f"{rid}_{sensor.name}"] = {
                "p": "binary_sensor",
                **state,
                "value_template": "{{ 'ON' if value_json.value >= 0.5 else 'OFF' }}",
            }
        else:
            components[f"{rid}_{sensor.name}"] = {
                "p": "sensor",
                **state,
                "device_class": DEVICE_CLASS[kind.name],
                "unit_of_measurement": HA_UNIT[kind.unit],
                "state_class": "measurement",
                "value_template": "{{ value_json.value }}",
            }
    for actuator in config.actuators:
        components[f"{rid}_{actuator.name}"] = {
            "p": "sensor",
            "name": actuator.name,
            "unique_id": f"anse_{rid}_{actuator.name}",
            "state_topic": f"{base}/actuator/{actuator.name}",
            "value_template": "{{ value_json.state }}",
        }
    for action in ("estop", "reset"):
        components[f"{rid}_{action}"] = {
            "p": "button",
            "name": "E-stop" if action == "estop" else "Reset E-stop",
            "unique_id": f"anse_{rid}_{action}",
            "command_topic": f"{base}/command/{action}",
            "payload_press": "PRESS",
        }
    return {
        "dev": {
            "ids": f"anse_{rid}",
            "name": f"anse-hw {rid}",
            "mf": "anse-hw",
            "sw": __version__,
        },
        "o": {"name": "anse-hw", "sw": __version__},
        "cmps": components,
        "avty_t": f"{base}/status",
        "pl_avail": "online",
        "pl_not_avail": "offline",
        "qos": 1,
    }
