"""`anse-hw` as a process with a two-wheel base on the mock pin factory: a
TFmini on a pseudo-terminal cruises it, slows it and stops it; the wheels'
duties are read back from the mock pins' state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anse_hw.drivers.protocols import tfmini_frame
from tests.conftest import GPIO_BASE, pin, wait_for
from tests.serialdev import PtyDevice


def drive_config(device: str, pins: Path, stop_mode: str = "coast") -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: front, driver: serial, port: {device}, protocol: tfmini, max_age: 5}}
actuators:
{GPIO_BASE}
    max_speed: 0.8
    accel: 4.0
    stop_mode: {stop_mode}
reflexes:
  - {{name: slow_near, sensor: front, actuator: base,
     command: {{limit: {{full_at: 60, zero_at: 15}}}}}}
  - {{name: cruise, sensor: front, above: 30, actuator: base, command: {{linear: 0.5, angular: 0}}}}
  - {{name: guard, sensor: front, below: 15, actuator: base, command: stop}}
"""


def duty(pins: Path, wheel: str) -> float:
    """A wheel's signed duty from its pins: the enable's PWM, signed by the
    direction pin that is high (0 when both or neither are)."""
    forward, backward, enable = {"left": (17, 27, 12), "right": (22, 23, 13)}[wheel]
    ahead, back = pin(pins, f"GPIO{forward}"), pin(pins, f"GPIO{backward}")
    level = pin(pins, f"GPIO{enable}") or 0.0
    return level if ahead and not back else -level if back and not ahead else 0.0


@pytest.fixture
def device(tmp_path):
    device = PtyDevice(tmp_path / "ttyTFMINI")
    yield device
    device.close()


def test_a_cruise_drives_the_wheels_a_limit_slows_them_a_guard_stops_them(
    start_daemon, watch, tmp_path, device
):
    pins = tmp_path / "pins.json"
    daemon = start_daemon(drive_config(device.path, pins))
    stream = watch(daemon.url)
    device.write(tfmini_frame(80))
    # Each ramp step sets the left wheel, then the right: wait for both.
    both = pytest.approx((0.4, 0.4))
    wait_for(lambda: (duty(pins, "left"), duty(pins, "right")) == both, what="both at cruise")
    moving = wait_for(
        lambda: [e for e in stream.events if e["type"] == "actuator"], what="actuator event"
    )[-1]["data"]
    assert moving["state"] == "MOVING"
    assert (moving["linear"], moving["angular"]) == (0.5, 0.0)
    device.write(tfmini_frame(24))  # forward capped at 0.2: 0.16 of duty, at once
    wait_for(lambda: duty(pins, "left") == pytest.approx(0.16), what="slowed by the limit")
    device.write(tfmini_frame(10))
    wait_for(lambda: duty(pins, "left") == 0.0 and duty(pins, "right") == 0.0, what="stopped")
    stopped = [e for e in stream.events if e["type"] == "actuator"][-1]["data"]
    assert stopped["state"] == "STOPPED" and stopped["linear"] == 0.0
    assert pin(pins, "GPIO12") == 0.0, "coast: the enable low"
    daemon.stop()
    assert daemon.proc.returncode == 0


def session_cookie(port: int, token: str) -> str:
    """The dashboard's session, as POST /api/login with the token gives it."""
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/login",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["Set-Cookie"].split(";", 1)[0]


def operator_config(device: str, pins: Path, heartbeat: float) -> str:
    """The base with only its guard: it moves when an operator drives it."""
    text = drive_config(device, pins).replace("port: 0}", f"port: 0, heartbeat: {heartbeat}}}")
    return "\n".join(line for line in text.splitlines() if "cruise" not in line)


def test_an_operator_drives_the_base_over_http_hold_to_run(start_daemon, tmp_path, device):
    from tests.test_control import post

    pins = tmp_path / "pins.json"
    hold = 2.0  # ten times what a request takes on a busy machine
    daemon = start_daemon(operator_config(device.path, pins, hold))
    token = (daemon.state / "control-token").read_text().strip()
    device.write(tfmini_frame(80))  # the guard is clear
    turn = {"command": {"linear": 0.5, "angular": 0.25}}
    status, body = wait_for(
        lambda: (got := post(daemon.port, "/api/actuators/base", token, turn))[0] == 200 and got,
        what="the base accepts a drive once the guard has read",
    )
    assert body == {"actuator": "base", "state": "MOVING"}
    # a left curve: the right wheel faster, both forward (0.8 * 0.25 and 0.8 * 0.75)
    wait_for(lambda: duty(pins, "right") == pytest.approx(0.6), what="right wheel at 0.6")
    assert duty(pins, "left") == pytest.approx(0.2)
    wait_for(lambda: duty(pins, "right") == 0.0, timeout=hold + 20, what="lapse: no heartbeat")
    assert duty(pins, "left") == 0.0
    status, body = post(daemon.port, "/api/actuators/base", token, {"command": {"linear": 2}})
    assert status == 400 and "\n" not in body["error"]
    status, body = post(
        daemon.port, "/api/actuators/base", token, {"command": {"linear": 1.5, "angular": 0}}
    )
    assert (status, body["error"]) == (400, "command linear must be from -1 to 1, got 1.5")
    daemon.stop()


def test_a_guard_stops_the_base_while_an_operator_drives_forward(start_daemon, tmp_path, device):
    import asyncio
    import json

    from websockets.asyncio.client import connect

    from tests.test_control import post

    pins = tmp_path / "pins.json"
    daemon = start_daemon(operator_config(device.path, pins, 2.0))
    token = (daemon.state / "control-token").read_text().strip()

    cookie = session_cookie(daemon.port, token)

    async def scenario() -> dict:
        async with connect(
            daemon.url,
            origin=f"http://127.0.0.1:{daemon.port}",
            additional_headers={"Cookie": cookie},
        ) as ws:
            await ws.recv()  # the snapshot

            async def drive(command: object) -> dict:
                message = {"action": "command", "actuator": "base", "command": command}
                await ws.send(json.dumps(message))
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "reply":
                        return event["data"]

            device.write(tfmini_frame(80))
            forward = {"linear": 1.0, "angular": 0.0}
            while not (await drive(forward))["ok"]:  # until the guard has read
                await asyncio.sleep(0.05)
            while duty(pins, "left") != pytest.approx(0.8):
                assert (await drive(forward))["ok"], "heartbeats renew the hold"
                await asyncio.sleep(0.05)
            device.write(tfmini_frame(10))
            while duty(pins, "left") != 0.0:
                await drive(forward)  # the operator keeps pushing forward
                await asyncio.sleep(0.05)
            return await drive(forward)

    refused = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert refused["ok"] is False and refused["status"] == 409
    assert duty(pins, "left") == 0.0 and duty(pins, "right") == 0.0
    status, _ = post(daemon.port, "/api/actuators/base", token, {"command": "move"})
    assert status == 400, "a drive takes stop or {linear, angular}"
    daemon.stop()


def test_a_drive_run_with_a_limit_replays_to_the_same_decisions(start_daemon, watch, tmp_path):
    import signal

    from anse_hw import recording
    from tests.test_recording import anse, one_file

    daemon = start_daemon(
        """
server: {host: 127.0.0.1, port: 0}
sensors:
  - {name: front, driver: sim, interval: 0.03}
actuators:
  - {name: base, type: drive, driver: sim, max_speed: 0.8}
reflexes:
  - {name: guard, sensor: front, below: 10, actuator: base, command: stop}
  - {name: cruise, sensor: front, above: 15, actuator: base, command: {linear: 1, angular: 0.2}}
  - {name: slow_near, sensor: front, actuator: base, command: {limit: {full_at: 40, zero_at: 12}}}
""",
        args=("--record", str(tmp_path / "rec")),
    )
    stream = watch(daemon.url)
    wait_for(lambda: stream.actuator_states().count("STOPPED") >= 2, what="stops and restarts")
    assert daemon.signal(signal.SIGTERM) == 0
    path = one_file(tmp_path / "rec")
    linears = {e["data"].get("linear") for e in stream.of_type("actuator")}
    assert len(linears) > 2, "the limit shaped the speed on the way in"
    assert {"STOPPED", "MOVING"} <= {d[2] for d in recording.decisions(path) if d[0] == "actuator"}
    result = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "replay matches the recording" in result.stderr


def test_check_shows_the_drive_and_its_limit(tmp_path):
    from tests.conftest import run_cli, write_config

    config = write_config(tmp_path, drive_config("/dev/null", tmp_path / "pins.json"))
    result = run_cli("--config", str(config), "--sim", "--check")
    assert result.returncode == 0, result.stderr
    assert "base: drive via sim, safe STOPPED, max_speed 0.8, accel 4/s" in result.stdout
    assert "slow_near: front caps forward of base: full from 60, none at 15" in result.stdout


def test_a_killed_daemon_s_base_is_stopped_by_safe_stop(start_daemon, tmp_path, device):
    """SIGKILL leaves the wheels driven, as on a Pi; --safe-stop (systemd's
    ExecStopPost) stops them from the config alone, as a stop_mode brake."""
    import subprocess
    import sys

    from tests.conftest import ROOT, daemon_env

    pins = tmp_path / "pins.json"
    daemon = start_daemon(
        drive_config(device.path, pins, stop_mode="brake"),
        env={"NOTIFY_SOCKET": str(tmp_path / "nobody")},  # as under systemd: no guardian
    )
    device.write(tfmini_frame(80))
    wait_for(lambda: duty(pins, "left") == pytest.approx(0.4), what="cruising")
    daemon.proc.kill()
    daemon.proc.wait()
    assert duty(pins, "left") == pytest.approx(0.4), "still driven"
    result = subprocess.run(
        [sys.executable, "-m", "anse_hw", "--config", str(tmp_path / "robot0.yaml"), "--safe-stop"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=daemon_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert duty(pins, "left") == 0.0 and duty(pins, "right") == 0.0
