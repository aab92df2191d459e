"""A drive's measured wheel speeds and MQTT: they ride on the events topic
like every event, but are not state changes to retain (real Mosquitto)."""

from __future__ import annotations

import json

from tests.broker import Subscriber
from tests.conftest import wait_for

BASE = """
server: {host: 127.0.0.1, port: 0}
sensors:
  - {name: front, driver: sim, interval: 0.05, profile: constant, value: 80}
actuators:
  - name: base
    type: drive
    driver: sim
    encoders: {left: {a: 5, b: 6, counts_per_rev: 100}, right: {a: 19, b: 26, counts_per_rev: 100}}
reflexes:
  - {name: cruise, sensor: front, above: 30, actuator: base, command: {linear: 0.5, angular: 0}}
"""


def test_measured_wheel_speeds_are_events_not_retained_state(broker, start_daemon):
    seen = Subscriber(broker, "operator", "anse/robot1/#")
    try:
        daemon = start_daemon(BASE + broker.config("robot1"))
        wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge to connect")

        def events(measured: bool) -> list[dict]:
            found = [json.loads(m) for m in seen.on("anse/robot1/events")]
            return [
                e
                for e in found
                if e["type"] == "actuator" and ("wheel_speeds" in e["data"]) == measured
            ]

        wait_for(lambda: len(events(measured=True)) >= 10, what="ten measurements on MQTT")
        states = [json.loads(m)["state"] for m in seen.on("anse/robot1/actuator/base")]
        assert "MOVING" in states
        assert len(states) <= len(events(measured=False)) + 1  # + the retained one at start
    finally:
        seen.close()
