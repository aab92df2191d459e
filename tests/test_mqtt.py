"""The MQTT bridge and /metrics against a real Mosquitto (README.md, "Many
robots: MQTT and Home Assistant")."""

from __future__ import annotations

import json
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from anse_hw.drivers.protocols import tfmini_frame
from tests.broker import Mosquitto, Subscriber
from tests.conftest import (
    KINDS,
    fast_sim_config,
    hardware_config,
    http_get,
    pin,
    wait_for,
)
from tests.serialdev import PtyDevice


@pytest.fixture
def subscribers():
    made: list[Subscriber] = []

    def make(broker: Mosquitto, user: str, *topics: str) -> Subscriber:
        made.append(Subscriber(broker, user, *topics))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


def test_discovery_and_retained_state_as_a_subscriber_sees_them(broker, subscribers, start_daemon):
    daemon = start_daemon(KINDS.format(port=0) + broker.config("robot1"))
    wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge to connect")
    # Once the broker holds them (a first client has seen them published)...
    first = subscribers(broker, "operator", "anse/robot1/#", "homeassistant/#")
    for topic in (
        "homeassistant/device/robot1/config",
        "anse/robot1/status",
        "anse/robot1/actuator/movement",
    ):
        wait_for(lambda t=topic: first.on(t), what=topic)
    # ...a client arriving later gets the retained messages: what Home Assistant sees.
    seen = subscribers(broker, "operator", "anse/robot1/#", "homeassistant/#")
    config = json.loads(wait_for(lambda: seen.on("homeassistant/device/robot1/config"))[0])
    parts = config["cmps"]
    assert config["dev"]["ids"] == "anse_robot1" and config["avty_t"] == "anse/robot1/status"
    assert parts["robot1_front"]["device_class"] == "distance"
    assert parts["robot1_front"]["unit_of_measurement"] == "cm"
    assert parts["robot1_driver_temp"]["device_class"] == "temperature"
    assert parts["robot1_driver_temp"]["unit_of_measurement"] == "°C"
    assert parts["robot1_bumper"]["p"] == "binary_sensor"
    assert parts["robot1_fan"]["state_topic"] == "anse/robot1/actuator/fan"
    assert parts["robot1_estop"]["p"] == "button"
    assert parts["robot1_estop"]["command_topic"] == "anse/robot1/command/estop"
    assert parts["robot1_reset"]["command_topic"] == "anse/robot1/command/reset"
    assert wait_for(lambda: seen.on("anse/robot1/status"))[0] == b"online"
    temp = json.loads(wait_for(lambda: seen.on("anse/robot1/sensor/driver_temp"))[-1])
    assert temp["unit"] == "°C" and isinstance(temp["value"], float)
    fan = json.loads(wait_for(lambda: seen.on("anse/robot1/actuator/fan"))[-1])
    assert fan["state"] in ("ON", "OFF") and fan["type"] == "output"
    retained = {t for t, _, r in seen.messages if r}
    assert {"anse/robot1/status", "anse/robot1/actuator/movement"} <= retained
    event = json.loads(wait_for(lambda: seen.on("anse/robot1/events"))[-1])
    assert set(event) >= {"type", "timestamp", "data", "seq"}
    # Home Assistant coming online again gets the discovery again.
    before = len(seen.on("homeassistant/device/robot1/config"))
    seen.publish("homeassistant/status", "online")
    wait_for(
        lambda: len(seen.on("homeassistant/device/robot1/config")) > before,
        what="discovery re-sent",
    )


def test_a_killed_daemon_shows_offline(broker, subscribers, start_daemon):
    daemon = start_daemon(fast_sim_config(0) + broker.config("robot2"))
    seen = subscribers(broker, "operator", "anse/robot2/status")
    wait_for(lambda: seen.on("anse/robot2/status")[-1:] == [b"online"], what="online")
    daemon.proc.kill()
    daemon.proc.wait()
    wait_for(lambda: seen.on("anse/robot2/status")[-1:] == [b"offline"], what="the last will")


def test_estop_from_the_operator_stops_the_pins_and_a_viewer_cannot(
    broker, subscribers, start_daemon, watch, tmp_path
):
    device = PtyDevice(tmp_path / "ttyLIDAR")
    try:
        pins = tmp_path / "pins.json"
        text = hardware_config(0, device.path, pins, max_age=5) + broker.config("robot1")
        daemon = start_daemon(text)
        wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge")
        stream = watch(daemon.url)
        device.write(tfmini_frame(80))
        stream.wait_state("MOVING")
        viewer = subscribers(broker, "viewer", "anse/robot1/status")
        operator = subscribers(broker, "operator", "anse/robot1/status")
        viewer.publish("anse/robot1/command/estop")  # the broker's ACL drops it
        operator.publish("anse/robot1/command/reset")  # behind it, from the same broker

        def operator_estops() -> list[dict]:
            return [
                e["data"]
                for e in stream.of_type("reflex")
                if e["data"]["reflex_name"] == "operator_estop"
            ]

        wait_for(lambda: operator_estops(), what="the operator's reset")
        assert [e["triggered"] for e in operator_estops()] == [False], "the viewer stopped nothing"
        assert pin(pins, "GPIO17") == 0.6
        operator.publish("anse/robot1/command/estop")
        stream.wait_state("STOPPED")
        assert pin(pins, "GPIO17") == 0.0
        assert "mqtt" in operator_estops()[-1]["condition"]
        health = json.loads(http_get(f"http://127.0.0.1:{daemon.port}/healthz")[1])
        assert health["estop_latched"] is True
        assert "Denied PUBLISH from test-viewer" in broker.log.read_text(), "the ACL refused it"
    finally:
        device.close()


def test_the_stream_carries_on_without_the_broker_and_the_bridge_comes_back(
    broker, subscribers, start_daemon, watch
):
    daemon = start_daemon(fast_sim_config(0, interval=0.05) + broker.config("robot1"))
    wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge")
    stream = watch(daemon.url)
    broker.stop()
    wait_for(
        lambda: (
            "unreachable" in daemon.log() or "MQTT: " in daemon.log().split("MQTT: connected", 1)[1]
        ),
        what="the bridge to notice",
    )
    mark = len(stream.events)
    stream.wait_state("STOPPED", after=mark)  # reflexes go on: a full sweep passes
    stream.wait_state("MOVING", after=mark)
    broker.start()
    seen = subscribers(broker, "operator", "anse/robot1/status", "anse/robot1/events")
    wait_for(
        lambda: seen.on("anse/robot1/status")[-1:] == [b"online"],
        timeout=40,
        what="the bridge to reconnect",
    )
    wait_for(lambda: seen.on("anse/robot1/events"), what="events again")
    assert daemon.log().count("MQTT: broker") <= 2, "one line per change, not one per retry"
    assert "Traceback" not in daemon.log()


def test_three_robots_on_one_broker_are_three_devices(broker, subscribers, start_daemon):
    for robot in ("robot1", "robot2", "robot3"):
        start_daemon(fast_sim_config(0) + broker.config(robot))
    seen = subscribers(broker, "operator", "homeassistant/device/+/config")
    wait_for(
        lambda: (
            {t for t, _, _ in seen.messages}
            == {f"homeassistant/device/robot{i}/config" for i in (1, 2, 3)}
        ),
        what="three devices",
    )


def test_bad_credentials_are_one_clear_line(broker, start_daemon):
    daemon = start_daemon(fast_sim_config(0) + broker.config("robot1", "wrong"))
    # Mosquitto logs every attempt: wait for the daemon to have retried.
    wait_for(
        lambda: broker.log.read_text().count("not authorised") >= 2,
        what="two refused attempts",
    )
    log = daemon.log()
    assert log.count("refused us: not authorised") == 1, log
    assert "check mqtt.username and the password" in log
    assert "Traceback" not in log
    assert daemon.proc.poll() is None, "the robot runs on without its broker"


def test_metrics_in_prometheus_text_format(broker, start_daemon):
    daemon = start_daemon(fast_sim_config(0, interval=0.05) + broker.config("robot1"))
    wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge")

    def metrics() -> dict:
        status, body = http_get(f"http://127.0.0.1:{daemon.port}/metrics")
        assert status == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    got = wait_for(
        lambda: (m := metrics()).get(("anse_stop_latency_seconds_count", ())) and m,
        what="a stop",
    )
    assert got[("anse_readings_total", (("sensor", "distance_sensor"),))] > 5
    assert got[("anse_reflex_firings_total", (("reflex", "proximity_safeguard"),))] >= 1
    assert got[("anse_actuator_changes_total", (("actuator", "movement"), ("state", "STOPPED")))]
    assert got[("anse_stop_latency_seconds_bucket", (("le", "+Inf"),))] >= 1
    assert got[("anse_mqtt_connected", ())] == 1
    assert ("anse_mqtt_queue_depth", ()) in got and ("anse_clients", ()) in got
    assert got[("anse_stale_sensors", ())] == 0
    daemon.signal(signal.SIGTERM)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("mqtt: {port: 0}", "mqtt.port: 0 must be a TCP port"),
        ("mqtt: {robot_id: a/b}", "mqtt.robot_id: 'a/b' must be 1-64 of A-Z a-z 0-9 _ -"),
        ("mqtt: {hots: x}", "did you mean 'host'"),
        ("mqtt: {password: x}", "mqtt.username: required with a password"),
        ("mqtt: {username: u, password_file: /nonexistent}", "password_file: cannot read it"),
    ],
)
def test_check_validates_the_mqtt_section(tmp_path, section, expected):
    from tests.test_config import GOOD, run_cli

    path = tmp_path / "robot.yaml"
    path.write_text(GOOD + section + "\n")
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_check_shows_the_bridge_without_its_password(tmp_path):
    from tests.test_config import GOOD, run_cli

    path = tmp_path / "robot.yaml"
    path.write_text(GOOD + "mqtt: {host: b.local, username: robot1, password: hunter2}\n")
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 0, result.stderr
    assert "mqtt: b.local:1883 as user robot1, topics anse/" in result.stdout
    assert "hunter2" not in result.stdout


def test_a_stalled_broker_delays_nothing_and_the_queue_stays_bounded(broker, start_daemon, watch):
    """Mosquitto frozen (SIGSTOP): it accepts nothing more, and the bridge's
    writes back up.  Reflexes and the WebSocket stream go on; the bridge's
    queue stays at its bound and says what it dropped."""
    section = broker.config("robot1").replace("robot_id: robot1", "robot_id: robot1, queue: 50")
    daemon = start_daemon(fast_sim_config(0, interval=0.02) + section)
    wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge")
    stream = watch(daemon.url)
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        mark = len(stream.events)
        for _ in range(3):  # three whole sweeps: stops and restarts, on time
            stream.wait_state("STOPPED", after=mark)
            mark = len(stream.events)
            stream.wait_state("MOVING", after=mark)
            mark = len(stream.events)

        def mqtt_figures() -> dict:
            body = http_get(f"http://127.0.0.1:{daemon.port}/metrics")[1].decode()
            return {
                s.name: s.value
                for f in text_string_to_metric_families(body)
                for s in f.samples
                if s.name.startswith("anse_mqtt")
            }

        figures = wait_for(
            lambda: (m := mqtt_figures())["anse_mqtt_dropped_events_total"] > 0 and m,
            timeout=30,
            what="drops to be counted",
        )
        assert figures["anse_mqtt_queue_depth"] <= 50
        assert "events dropped while the broker is not taking them" in daemon.log()
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    assert "Traceback" not in daemon.log()


def test_a_clean_stop_says_offline_and_exits_at_once(broker, subscribers, start_daemon):
    daemon = start_daemon(fast_sim_config(0) + broker.config("robot3"))
    seen = subscribers(broker, "operator", "anse/robot3/status")
    wait_for(lambda: seen.on("anse/robot3/status")[-1:] == [b"online"], what="online")
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 0, "the bridge must not hold up the shutdown"
    wait_for(lambda: seen.on("anse/robot3/status")[-1:] == [b"offline"], what="offline")
    # Said by the bridge itself, which then said goodbye: not the broker's last
    # will for a connection that was cut while something waited.
    goodbye = "Received DISCONNECT from anse-hw-robot3"
    wait_for(lambda: goodbye in broker.log.read_text(), what="the bridge's DISCONNECT")


def test_discovery_is_on_by_default_and_null_turns_it_off():
    from anse_hw import config

    base = "sensors: [{name: a, driver: sim}]\n"
    assert config.parse(base + "mqtt: {}").mqtt.discovery_prefix == "homeassistant"
    assert config.parse(base + "mqtt: {discovery_prefix: null}").mqtt.discovery_prefix is None
    assert config.parse(base + "mqtt: {port: null}").mqtt.port == 1883, "null is the default"
