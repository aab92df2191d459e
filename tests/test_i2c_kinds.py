"""The kinds issue 24 adds (voltage, current, pressure) reach Home
Assistant with its device class and unit: MQTT discovery describes every
numeric kind, so a robot with a battery monitor still announces itself."""

from __future__ import annotations

from anse_hw import config as configuration
from anse_hw.kinds import SENSOR_KINDS
from anse_hw.mqtt.discovery import discovery

NUMERIC = [kind for kind in SENSOR_KINDS.values() if not kind.binary]


def test_home_assistant_gets_a_device_class_and_unit_for_every_numeric_kind():
    sensors = "\n".join(
        f"  - {{name: s_{kind.name}, type: {kind.name}, driver: sim}}" for kind in NUMERIC
    )
    cfg = configuration.parse(f"sensors:\n{sensors}\nmqtt: {{robot_id: r1}}\n")
    parts = discovery(cfg, "anse/r1")["cmps"]
    found = {
        kind.name: (
            parts[f"r1_s_{kind.name}"]["device_class"],
            parts[f"r1_s_{kind.name}"]["unit_of_measurement"],
        )
        for kind in NUMERIC
    }
    assert found["voltage"] == ("voltage", "V")
    assert found["current"] == ("current", "A")
    assert found["pressure"] == ("atmospheric_pressure", "hPa")
    assert found["distance"] == ("distance", "cm")


def test_home_assistant_shows_a_servo_as_its_angle():
    cfg = configuration.parse(
        "sensors:\n  - {name: front, driver: sim}\n"
        "actuators:\n  - {name: pan, type: servo, driver: sim, safe: 90}\n"
        "mqtt: {robot_id: r1}\n"
    )
    pan = discovery(cfg, "anse/r1")["cmps"]["r1_pan"]
    assert (pan["p"], pan["unit_of_measurement"], pan["state_topic"]) == (
        "sensor",
        "°",
        "anse/r1/actuator/pan",
    )
