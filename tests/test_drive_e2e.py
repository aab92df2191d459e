"""`anse-hw` as a process with a two-wheel base on the mock pin factory: a
TFmini on a pseudo-terminal cruises it, slows it and stops it; the wheels'
duties are read back from the mock pins' state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anse_hw.drivers.protocols import tfmini_frame
from tests.conftest import pin, wait_for
from tests.serialdev import PtyDevice


def drive_config(device: str, pins: Path, stop_mode: str = "coast") -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: front, driver: serial, port: {device}, protocol: tfmini, max_age: 5}}
actuators:
  - name: base
    type: drive
    driver: gpio
    left:  {{forward: 17, backward: 27, enable: 12}}
    right: {{forward: 22, backward: 23, enable: 13}}
    max_speed: 0.8
    accel: 4.0
    stop_mode: {stop_mode}
reflexes:
  - {{name: slow_near, sensor: front, actuator: base, command: {{limit: {{full_at: 60, zero_at: 15}}}}}}
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
    wait_for(lambda: duty(pins, "left") == pytest.approx(0.4), what="left wheel at cruise")
    assert duty(pins, "right") == pytest.approx(0.4)
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
