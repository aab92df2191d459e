"""Home Assistant's MQTT discovery: the robot as one device with its parts.

Sent retained to <discovery_prefix>/device/<robot_id>/config, and again when
Home Assistant's <discovery_prefix>/status says online.  Home Assistant's
own rules, from its MQTT integration's documentation:

- device-based discovery: `dev` and `o` (origin) once, each part under
  `cmps` with its platform `p` and a `unique_id`;
- a part whose config is only `{"p": <platform>}` is removed: that is how a
  sensor renamed or deleted since the last run leaves Home Assistant, not as
  a ghost entity (`leftovers` finds them in the last run's retained config);
- `expire_after` makes an entity unavailable when its state stops coming:
  a stale or faulted sensor stops publishing, so it goes unavailable
  instead of showing its last value forever;
- the ids in a discovery topic are `[a-zA-Z0-9_-]` (options.ha_id_problem).
"""

from __future__ import annotations

import json
import math
from typing import Any

from anse_hw import __version__
from anse_hw.kinds import ACTUATOR_KINDS, OFF, ON, SENSOR_KINDS
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
#: Seconds between retained updates of one sensor: the bridge publishes a
#: sensor's latest reading at most this often.
RETAIN_PERIOD = 1.0


def estop_topic(base: str) -> str:
    """Where the E-stop latch is retained, ON while latched."""
    return f"{base}/estop"


def discovery(
    config: Config, base: str, gone: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """Home Assistant's device-based discovery payload: one device, its parts,
    whose topics are under `base` (<topic_prefix>/<robot_id>); `gone` are the
    removal entries of parts an earlier run had (see `leftovers`)."""
    rid = config.mqtt.robot_id
    components: dict[str, dict[str, Any]] = dict(gone or {})
    for sensor in config.sensors:
        components[f"{rid}_{sensor.name}"] = _sensor(sensor, rid, base)
    for actuator in config.actuators:
        components[f"{rid}_{actuator.name}"] = _actuator(actuator.name, actuator.type, rid, base)
    components[f"{rid}_estop_latched"] = {
        "p": "binary_sensor",
        "name": "E-stop latched",
        "unique_id": f"anse_{rid}_estop_latched",
        "state_topic": estop_topic(base),
        "payload_on": ON,
        "payload_off": OFF,
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


def _sensor(sensor: Any, rid: str, base: str) -> dict[str, Any]:
    """A sensor goes unavailable in Home Assistant once it has been stale for
    its max_age: its state comes at most every RETAIN_PERIOD, so that much
    later than the daemon itself calls it stale, and never while it is fresh."""
    kind = SENSOR_KINDS[sensor.type]
    common = {
        "name": sensor.name,
        "unique_id": f"anse_{rid}_{sensor.name}",
        "state_topic": f"{base}/sensor/{sensor.name}",
        "expire_after": math.ceil(sensor.max_age + RETAIN_PERIOD),
    }
    if kind.binary:
        return {
            "p": "binary_sensor",
            **common,
            "value_template": "{{ 'ON' if value_json.value >= 0.5 else 'OFF' }}",
        }
    return {
        "p": "sensor",
        **common,
        "device_class": DEVICE_CLASS[kind.name],
        "unit_of_measurement": HA_UNIT[kind.unit],
        "state_class": "measurement",
        "value_template": "{{ value_json.value }}",
    }


def _actuator(name: str, kind: str, rid: str, base: str) -> dict[str, Any]:
    """An on/off actuator (an output) is a binary sensor; a servo a sensor of
    its angle; any other (a motor) an enum sensor with its states, so Home
    Assistant offers them in its UI."""
    common = {
        "name": name,
        "unique_id": f"anse_{rid}_{name}",
        "state_topic": f"{base}/actuator/{name}",
        "value_template": "{{ value_json.state }}",
    }
    if ACTUATOR_KINDS[kind].value is not None:  # a servo: its angle
        return {"p": "sensor", **common, "unit_of_measurement": "°"}
    states = ACTUATOR_KINDS[kind].states
    if set(states) == {ON, OFF}:
        return {"p": "binary_sensor", **common, "payload_on": ON, "payload_off": OFF}
    return {"p": "sensor", **common, "device_class": "enum", "options": list(states)}


def leftovers(
    retained: bytes, current: dict[str, Any], base: str
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """What the last run announced (`retained`, its discovery payload as the
    broker kept it) and this one does not: each such part as Home Assistant's
    removal entry `{"p": platform}`, and the retained state topics under
    `base` they leave behind, to be cleared.  Anything unreadable counts as
    nothing announced: we never remove what we cannot name."""
    try:
        old = json.loads(retained)
    except (ValueError, UnicodeDecodeError):
        return {}, []
    parts = old.get("cmps") if isinstance(old, dict) else None
    if not isinstance(parts, dict):
        return {}, []
    gone: dict[str, dict[str, str]] = {}
    stale: list[str] = []
    for cid, part in parts.items():
        # A removal entry of the last run has done its work: not carried on.
        if cid in current["cmps"] or not isinstance(part, dict) or set(part) == {"p"}:
            continue
        platform = part.get("p")
        if not isinstance(platform, str):
            continue
        gone[cid] = {"p": platform}
        topic = part.get("state_topic")
        if isinstance(topic, str) and topic.startswith(f"{base}/"):
            stale.append(topic)
    return gone, stale
