"""Home Assistant's MQTT discovery as Home Assistant reads it, against a real
Mosquitto: the payload checked against a JSON schema written from Home
Assistant's MQTT documentation (tests/ha_discovery_schema.json), a stale
sensor going unavailable, a renamed sensor leaving no ghost behind, and
robot ids Home Assistant would drop refused at --check."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jsonschema
import pytest

from anse_hw.drivers.protocols import tfmini_frame
from anse_hw.mqtt.discovery import RETAIN_PERIOD
from tests.broker import Mosquitto, Subscriber
from tests.conftest import KINDS, fast_sim_config, hardware_config, wait_for
from tests.serialdev import PtyDevice

SCHEMA = json.loads((Path(__file__).parent / "ha_discovery_schema.json").read_text())
CONFIG_TOPIC = "homeassistant/device/robot1/config"


@pytest.fixture
def subscribers():
    made: list[Subscriber] = []

    def make(broker: Mosquitto, *topics: str) -> Subscriber:
        made.append(Subscriber(broker, "operator", *topics))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


def announced(seen: Subscriber) -> dict:
    """The latest discovery config the subscriber got."""
    return json.loads(wait_for(lambda: seen.on(CONFIG_TOPIC), what="the discovery config")[-1])


def test_the_discovery_payload_is_what_home_assistant_documents(broker, subscribers, start_daemon):
    start_daemon(KINDS.format(port=0) + broker.config("robot1"))
    seen = subscribers(broker, "anse/robot1/#", "homeassistant/#")
    config = announced(seen)
    jsonschema.validate(config, SCHEMA)
    parts = config["cmps"]
    # The motor: an enum with its states; the fan (an output): on or off.
    movement = parts["robot1_movement"]
    assert (movement["p"], movement["device_class"]) == ("sensor", "enum")
    assert set(movement["options"]) == {"MOVING", "STOPPED"}
    fan = parts["robot1_fan"]
    assert fan["p"] == "binary_sensor" and (fan["payload_on"], fan["payload_off"]) == ("ON", "OFF")
    # Each sensor goes unavailable a little after the daemon calls it stale
    # (KINDS leaves max_age to its default: 3 intervals, at least 0.5 s).
    for name, interval in (("front", 0.1), ("bumper", 0.1), ("driver_temp", 0.1), ("air", 0.2)):
        max_age = max(0.5, 3 * interval)
        assert parts[f"robot1_{name}"]["expire_after"] == math.ceil(max_age + RETAIN_PERIOD)
    # The E-stop latch, retained OFF, turns ON when an operator presses E-stop.
    latch = parts["robot1_estop_latched"]
    assert latch["p"] == "binary_sensor" and latch["state_topic"] == "anse/robot1/estop"
    assert wait_for(lambda: seen.on("anse/robot1/estop"), what="the latch state") == [b"OFF"]
    seen.publish(parts["robot1_estop"]["command_topic"])
    wait_for(lambda: seen.on("anse/robot1/estop")[-1:] == [b"ON"], what="the latch ON")
    later = subscribers(broker, "anse/robot1/estop")
    wait_for(lambda: later.on("anse/robot1/estop") == [b"ON"], what="the latch retained")


def test_a_stale_sensor_stops_its_state_so_home_assistant_expires_it(
    broker, subscribers, start_daemon, watch, tmp_path
):
    device = PtyDevice(tmp_path / "ttyLIDAR")
    try:
        text = hardware_config(0, device.path, tmp_path / "pins.json", max_age=2)
        daemon = start_daemon(text + broker.config("robot1"))
        seen = subscribers(broker, "anse/robot1/sensor/lidar", "homeassistant/#")
        expire = announced(seen)["cmps"]["robot1_lidar"]["expire_after"]
        assert expire == math.ceil(2 + RETAIN_PERIOD)
        stream = watch(daemon.url)
        device.write(tfmini_frame(80))
        stream.wait_state("MOVING")
        wait_for(lambda: seen.on("anse/robot1/sensor/lidar"), what="the lidar's state")
        # The lidar falls silent: the daemon stops the motor when it goes stale...
        stream.wait_state("STOPPED", after=len(stream.events))
        # ...and its state stops coming: Home Assistant marks it unavailable
        # once none has come for expire_after seconds.
        last = [len(seen.on("anse/robot1/sensor/lidar")), time.monotonic()]

        def quiet_for_expire_after() -> bool:
            count = len(seen.on("anse/robot1/sensor/lidar"))
            if count != last[0]:
                last[:] = [count, time.monotonic()]
            return time.monotonic() - last[1] > expire

        wait_for(quiet_for_expire_after, timeout=30, what="no state for expire_after")
    finally:
        device.close()


def test_a_renamed_sensor_is_removed_and_its_retained_state_cleared(
    broker, subscribers, start_daemon
):
    before = fast_sim_config(0) + broker.config("robot1")
    first = start_daemon(before)
    watcher = subscribers(broker, "anse/robot1/sensor/#", "homeassistant/#")
    wait_for(lambda: watcher.on("anse/robot1/sensor/distance_sensor"), what="a retained reading")
    assert "robot1_distance_sensor" in announced(watcher)["cmps"]
    first.stop()
    second = start_daemon(before.replace("distance_sensor", "range"))
    # The old part: removed the way Home Assistant documents (its platform
    # alone), its retained state deleted (an empty retained message)...
    wait_for(
        lambda: b"" in watcher.on("anse/robot1/sensor/distance_sensor"),
        what="the old state cleared",
    )
    # The new device config may reach the broker just after the clearing.
    wait_for(lambda: "robot1_range" in announced(watcher)["cmps"], what="the new config")
    config = announced(watcher)
    jsonschema.validate(config, SCHEMA)
    assert config["cmps"]["robot1_distance_sensor"] == {"p": "sensor"}
    assert config["cmps"]["robot1_range"]["state_topic"] == "anse/robot1/sensor/range"
    wait_for(
        lambda: "removed from Home Assistant: robot1_distance_sensor" in second.log(),
        what="the removal logged",
    )
    # ...so what Home Assistant gets at its next start has no ghost.
    later = subscribers(broker, "anse/robot1/sensor/#")
    wait_for(lambda: later.on("anse/robot1/sensor/range"), what="the new sensor's state")
    assert later.on("anse/robot1/sensor/distance_sensor") == []
    # The removal has done its work: the run after does not carry it on.
    second.stop()
    start_daemon(before.replace("distance_sensor", "range"))
    latest = subscribers(broker, "homeassistant/#")
    wait_for(
        lambda: (got := latest.on(CONFIG_TOPIC)) and b"robot1_distance_sensor" not in got[-1],
        what="a config without the removal entry",
    )


@pytest.mark.parametrize(
    ("robot_id", "suggestion"), [("robot.1", "robot_1"), ("my robot", "my_robot")]
)
def test_check_refuses_a_robot_id_home_assistant_forbids(tmp_path, robot_id, suggestion):
    from tests.test_config import GOOD, run_cli

    path = tmp_path / "robot.yaml"
    path.write_text(GOOD + f"mqtt: {{robot_id: '{robot_id}'}}\n")
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2, result.stderr
    assert "Home Assistant" in result.stderr and f"try '{suggestion}'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
