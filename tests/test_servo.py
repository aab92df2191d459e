"""Servos (issue 24), through the daemon as a process: one on a PCA9685
channel on the register-level fake bus, whose outputs the bus writes to
`i2c.fake_state_file`, and one on a GPIO pin through gpiozero's
AngularServo on the mock pin factory (MockPWMPin: the pin's state is the
duty cycle).  An angle becomes the datasheet's ON/OFF counts; SIGTERM,
--safe-stop and the guardian leave the servo at its safe angle."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from anse_hw.errors import Refused
from anse_hw.kinds import ACTUATOR_KINDS
from tests.conftest import (
    ROOT,
    daemon_env,
    engine_for,
    operator_url,
    pin,
    run_cli,
    text,
    wait_for,
)

#: 50 Hz from the PCA9685's 25 MHz oscillator: PRE_SCALE = round(25e6 /
#: (4096 × 50)) − 1 = 121 (datasheet §7.3.5), so one count is 122 / 25 MHz
#: = 4.88 µs, and a pulse of P µs is OFF = round(P / 4.88) counts from ON = 0.
#: With the default travel (0-180° over 1000-2000 µs):
SAFE_90 = {"on": 0, "off": 307, "pulse_us": 1498.2}  # 1500 µs, as near as 4.88 µs counts get
AT_45 = {"on": 0, "off": 256, "pulse_us": 1249.3}  # 1250 µs


def config(tmp_path: Path, command: str = "45", pan: str = "") -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {tmp_path / "pins.json"}}}
i2c: {{bus: 1, fake_file: {tmp_path / "i2c.json"}, fake_state_file: {tmp_path / "out.json"}}}
sensors:
  - {{name: front, driver: sim, interval: 0.05, profile: constant, value: 80}}
actuators:
  - {{name: pan, type: servo, driver: pca9685, address: 0x40, channel: 3, safe: 90{pan}}}
  - {{name: tilt, type: servo, driver: gpio, pin: 18, safe: 45,
      min_pulse_us: 500, max_pulse_us: 2500}}
reflexes:
  - {{name: look, sensor: front, above: 50, actuator: pan, command: {command}}}
  - {{name: nod, sensor: front, above: 50, actuator: tilt, command: {{angle: 135}}}}
"""


@pytest.fixture
def board(tmp_path: Path) -> Path:
    (tmp_path / "i2c.json").write_text(json.dumps({"0x40": {"device": "pca9685"}}))
    return tmp_path / "out.json"


def channel(out: Path, number: int = 3) -> dict | None:
    """What the fake PCA9685 at 0x40 drives on `number`, as the bus last wrote it."""
    try:
        return json.loads(out.read_text())["0x40"]["channels"][str(number)]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_angle_commands_become_pca9685_counts_and_sigterm_returns_to_the_safe_angle(
    tmp_path, board, start_daemon
):
    daemon = start_daemon(config(tmp_path))
    wait_for(lambda: channel(board) == AT_45, what="the pan servo at 45°")
    # The other channels stay off (bit 12 of OFF: full off).
    assert channel(board, 0) == {"on": 0, "off": 4096, "pulse_us": None}
    assert "pan: PCA9685 0x40 channel 3 (safe 90°)" in daemon.log()
    daemon.signal(signal.SIGTERM)
    daemon.proc.wait(timeout=30)
    assert channel(board) == SAFE_90


def test_the_gpio_servo_is_an_angular_servo_on_the_mock_pwm_pin(tmp_path, board, start_daemon):
    daemon = start_daemon(config(tmp_path))
    # 135° of 0-180 over 500-2500 µs is 2000 µs of a 20 ms frame: duty 0.1.
    wait_for(lambda: pin(tmp_path / "pins.json", "GPIO18") == pytest.approx(0.1), what="135°")
    assert "tilt: GPIO18 servo (safe 45°)" in daemon.log()


def killed(tmp_path: Path, start_daemon, env: dict[str, str]) -> None:
    """A daemon SIGKILLed with the pan servo at 45°: the board goes on pulsing."""
    daemon = start_daemon(config(tmp_path), env=env)
    out = tmp_path / "out.json"
    wait_for(lambda: channel(out) == AT_45, what="the pan servo at 45°")
    daemon.state  # noqa: B018 - its record is written once it is up
    daemon.proc.kill()
    daemon.proc.wait()


def test_safe_stop_after_a_kill_moves_the_pca9685_servo_to_its_safe_angle(
    tmp_path, board, start_daemon
):
    # NOTIFY_SOCKET: as under systemd, no guardian; ExecStopPost is this.
    killed(tmp_path, start_daemon, {"NOTIFY_SOCKET": str(tmp_path / "systemd")})
    assert channel(board) == AT_45, "still driven, as a real board would be"
    result = subprocess.run(
        [sys.executable, "-m", "anse_hw", "--config", str(tmp_path / "robot0.yaml"), "--safe-stop"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=daemon_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert channel(board) == SAFE_90
    assert "pan: 90 (PCA9685 0x40 channel 3 (safe 90°))" in result.stderr


def test_the_guardian_moves_the_pca9685_servo_to_its_safe_angle_after_a_kill(
    tmp_path, board, start_daemon
):
    killed(tmp_path, start_daemon, {})
    wait_for(lambda: channel(board) == SAFE_90, what="the guardian's safe stop")


@pytest.mark.parametrize(
    ("command", "pan", "said"),
    [
        ("200", "", "angle 200 is outside 0..180°, its travel"),
        ("{angle: left}", "", "'{'angle': 'left'}' is not a command for servo 'pan'"),
        ("stop", "", "it takes a number or {angle: N} | estop"),
        ("45", ", min_angle: 60", "safe: angle 90 is"),
    ],
)
def test_check_refuses_a_servo_command_it_cannot_take_with_its_line(
    tmp_path, board, command, pan, said
):
    path = tmp_path / "robot.yaml"
    text = config(tmp_path, command, pan)
    if pan:  # the safe angle outside the travel: put it there
        text = text.replace("safe: 90, min_angle: 60", "safe: 50, min_angle: 60")
        said = "angle 50 is outside 60..180°, its travel"
    path.write_text(text)
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert said in result.stderr
    line = 8 if pan else 12
    assert f"robot.yaml:{line}:" in result.stderr


def test_a_servo_without_a_safe_angle_is_refused(tmp_path, board):
    path = tmp_path / "robot.yaml"
    path.write_text(config(tmp_path).replace("channel: 3, safe: 90", "channel: 3"))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert "robot.yaml:8: actuators[0].safe: is missing: a servo's safe is an angle" in (
        result.stderr
    )


def test_the_servo_kind_takes_an_angle_in_each_form_a_user_writes():
    servo = ACTUATOR_KINDS["servo"]
    assert [servo.target(c) for c in (45, 22.5, {"angle": 90}, "135", "-10")] == [
        "45",
        "22.5",
        "90",
        "135",
        "-10",
    ]
    for refused in ("nan", "inf", True, None, {"angle": 1, "speed": 2}, [45], "left"):
        assert servo.target(refused) is None


def test_an_operator_moves_a_servo_by_angle_and_beyond_its_travel_is_a_400(tmp_path, board):
    lines = config(tmp_path).splitlines()
    # The pan servo alone: engine_for has no pin factory for the GPIO one.
    pan_only = [x for x in lines if not any(w in x for w in ("tilt", "min_pulse_us", "nod"))]
    engine, _ = engine_for("\n".join(pan_only))
    try:
        reply = engine.operator("command", "test", actuator="pan", command="60")
        assert reply == {"actuator": "pan", "state": "60"}
        # 60° of 0-180 over 1000-2000 µs: 1333 µs, 273 counts of 4.88 µs.
        assert channel(board) == {"on": 0, "off": 273, "pulse_us": 1332.2}
        with pytest.raises(Refused) as refused:
            engine.operator("command", "test", actuator="pan", command="200")
        assert refused.value.status == 400
        assert refused.value.reason == "pan: angle 200 is outside 0..180°, its travel"
        with pytest.raises(Refused) as refused:
            engine.operator("command", "test", actuator="pan", command="left")
        assert refused.value.reason == "pan is a servo: command must be a number or {angle: N}"
        assert channel(board)["off"] == 273, "a refused command moves nothing"
    finally:
        engine.close()
    assert channel(board) == SAFE_90


def test_two_servos_on_one_channel_are_refused_at_check(tmp_path, board):
    path = tmp_path / "robot.yaml"
    path.write_text(
        config(tmp_path).replace(
            "actuators:\n",
            "actuators:\n  - {name: grip, type: servo, driver: pca9685, channel: 3, safe: 10}\n",
        )
    )
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert "robot.yaml:9: actuators[1].channel: channel 3 of 0x40 already drives grip" in (
        result.stderr
    )


def test_the_estop_puts_both_servos_at_their_safe_angles_and_keeps_them_there(
    tmp_path, board, start_daemon, watch
):
    daemon = start_daemon(config(tmp_path))
    stream = watch(daemon.url)
    pins = tmp_path / "pins.json"
    wait_for(lambda: channel(board) == AT_45, what="the pan servo at 45°")
    wait_for(lambda: pin(pins, "GPIO18") == pytest.approx(0.1), what="the tilt servo at 135°")
    token = (daemon.state / "control-token").read_text().strip()
    request = urllib.request.Request(
        f"http://127.0.0.1:{daemon.port}/api/estop",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["latched"] is True
    # Driven before the answer: pan at 90°, tilt at 45° (1000 µs of 20 ms).
    assert channel(board) == SAFE_90
    assert pin(pins, "GPIO18") == pytest.approx(0.05)
    # The reflexes that moved them go on holding, and move nothing while latched.
    seen = len(stream.of_type("sensor"))
    wait_for(lambda: len(stream.of_type("sensor")) > seen + 5, what="more readings")
    assert channel(board) == SAFE_90
    assert pin(pins, "GPIO18") == pytest.approx(0.05)
    assert stream.of_type("worldmodel")[-1]["data"]["actuators"] == {"pan": "90", "tilt": "45"}


@pytest.mark.browser
def test_an_operator_holds_a_servo_at_an_angle_from_the_dashboard(
    tmp_path, board, start_daemon, page
):
    """The servo's card offers its safe angle and an angle to hold, not the
    on/off an output has; letting go returns the servo to its safe angle."""
    quiet = config(tmp_path).replace("value: 80", "value: 20")  # neither reflex fires
    daemon = start_daemon(quiet)
    page.goto(operator_url(daemon))
    pan = "[data-panel='actuator:pan']"
    page.wait_for_selector(f"{pan} .manual-hold:not([disabled])")
    assert text(page, f"{pan} .manual-safe") == "90° (safe)"
    page.fill(f"{pan} input.angle", "45")
    page.hover(f"{pan} .manual-hold")
    page.mouse.down()
    wait_for(lambda: channel(board) == AT_45, what="the pan servo held at 45°")
    page.wait_for_selector(f"{pan} .state-badge[data-state='45']")
    page.mouse.up()
    wait_for(lambda: channel(board) == SAFE_90, what="the pan servo back at 90° on release")
    assert page.errors == []
