"""The hardwired E-stop input (issue 22): a normally-closed button on a GPIO
pin, driven on gpiozero's MockFactory through `gpio.mock_input_file`, with
the daemon as a process, a real WebSocket client and the HTTP control API."""

from __future__ import annotations

import json

from tests.conftest import pin, run_cli, wait_for, write_config
from tests.test_control import post

ROBOT = """
robot_id: estopbot
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}, mock_input_file: {inputs}}}
estop: {{pin: 6}}
sensors:
  - {{name: front, driver: sim, interval: 0.05, profile: constant, value: 50}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.5}}
  - {{name: pump, type: output, driver: gpio, pin: 20}}
reflexes:
  - {{name: guard, sensor: front, below: 10, actuator: movement, command: stop}}
  - {{name: go, sensor: front, above: 15, actuators: [movement], command: move}}
  - {{name: fill, sensor: front, above: 15, actuator: pump, command: "on"}}
"""


def circuit(tmp_path, level: int) -> None:
    """0: the button's circuit closed (holds the pin low); 1: open."""
    (tmp_path / "inputs.json").write_text(json.dumps({"GPIO6": level}))


def world(stream) -> dict:
    return stream.of_type("worldmodel")[-1]["data"]


def test_opening_the_circuit_latches_every_actuator_safe_reset_waits_for_it_to_close(
    start_daemon, watch, tmp_path
):
    pins = tmp_path / "pins.json"
    circuit(tmp_path, 0)
    daemon = start_daemon(ROBOT.format(pins=pins, inputs=tmp_path / "inputs.json"))
    token = (daemon.state / "control-token").read_text().strip()
    stream = watch(daemon.url)
    wait_for(lambda: pin(pins, "GPIO17") == 0.5 and pin(pins, "GPIO20") == 1, what="moving")
    assert stream.of_type("worldmodel")[0]["data"]["estop_input"] == {"pin": 6}

    mark = len(stream.events)
    circuit(tmp_path, 1)  # the button pressed, or the wire cut
    stream.wait_state("STOPPED", after=mark)
    wait_for(lambda: pin(pins, "GPIO17") == 0 and pin(pins, "GPIO20") == 0, what="all safe")
    latch = next(
        e["data"] for e in stream.events[mark:] if e["type"] == "reflex" and e["data"]["triggered"]
    )
    assert latch["reflex_name"] == "estop_input"
    wait_for(lambda: world(stream)["estop_latched"], what="the latch on the stream")
    assert world(stream)["estop_circuit"] == "open"
    assert world(stream)["last_stop"]["cause"] == "estop_input"

    status, body = post(daemon.port, "/api/reset", token)
    assert status == 409
    assert "circuit is open" in body["error"]
    assert pin(pins, "GPIO17") == 0

    circuit(tmp_path, 0)  # released: the motor still waits for a reset
    wait_for(lambda: world(stream)["estop_circuit"] == "closed", what="the circuit closed")
    assert world(stream)["estop_latched"] and pin(pins, "GPIO17") == 0
    mark = len(stream.events)
    status, body = post(daemon.port, "/api/reset", token)
    assert status == 200, body
    # Moving again is the reflexes' decision, on the next clear reading.
    stream.wait_state("MOVING", after=mark)
    reading_first = [e["type"] for e in stream.events[mark:]]
    assert reading_first.index("sensor") < reading_first.index("actuator")
    log = daemon.log()
    assert "movement STOPPED by estop_input (emergency stop from the hardwired E-stop)" in log
    assert "movement MOVING by go (distance > 15cm; front read 50cm)" in log


def test_a_circuit_open_at_start_comes_up_latched(start_daemon, watch, tmp_path):
    pins = tmp_path / "pins.json"
    circuit(tmp_path, 1)
    daemon = start_daemon(ROBOT.format(pins=pins, inputs=tmp_path / "inputs.json"))
    stream = watch(daemon.url)
    wait_for(lambda: stream.of_type("sensor"), what="readings")
    assert world(stream)["estop_latched"] and world(stream)["estop_circuit"] == "open"
    assert pin(pins, "GPIO17") == 0


def test_check_says_when_no_hardwired_estop_is_configured(tmp_path):
    text = ROBOT.format(pins=tmp_path / "p.json", inputs=tmp_path / "i.json")
    with_one = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert with_one.returncode == 0, with_one.stderr
    assert "estop: hardwired on GPIO6" in with_one.stdout
    without = text.replace("estop: {pin: 6}\n", "")
    result = run_cli("--config", str(write_config(tmp_path, without, "b.yaml")), "--check")
    assert "estop: no hardwired E-stop configured" in result.stdout


def test_the_estop_pin_has_one_owner(tmp_path):
    text = ROBOT.format(pins=tmp_path / "p.json", inputs=tmp_path / "i.json")
    path = write_config(tmp_path, text.replace("pin: 20}", "pin: 6}"))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert "GPIO6 is already used by estop.pin" in result.stderr
