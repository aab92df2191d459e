"""I2C sensors through the daemon as a process, on the register-level fake
bus (`i2c.fake_file`), which the tests rewrite while the daemon runs: the
battery guard stops the motor, a vanished device is a fault that stops it
too and recovers, and each kind arrives with its unit (issue 24)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import pin, wait_for

BATTERY_AT = "0x41"


def set_devices(path: Path, devices: dict[str, dict]) -> None:
    """Replace the fake file atomically, as its docstring asks."""
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(devices))
    os.replace(staging, path)


def devices(volts: float = 12.4, distance_cm: float = 60, status: int = 0) -> dict[str, dict]:
    return {
        BATTERY_AT: {"device": "ina219", "bus_voltage": volts, "current": -0.5, "shunt_ohms": 0.1},
        "0x29": {"device": "vl53l1x", "distance_cm": distance_cm, "status": status},
        "0x76": {"device": "bme280", "temperature": 21.5, "pressure": 1002.5, "humidity": 40},
    }


def robot_config(tmp_path: Path) -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {tmp_path / "pins.json"}}}
i2c: {{bus: 1, fake_file: {tmp_path / "i2c.json"}}}
sensors:
  - {{name: battery, type: voltage, driver: ina219, address: 0x41, shunt_ohms: 0.1,
     interval: 0.1}}
  - {{name: motor_current, type: current, driver: ina219, address: 0x41, shunt_ohms: 0.1,
     interval: 0.1}}
  - {{name: tof, type: distance, driver: vl53l1x, address: 0x29}}
  - {{name: air, type: pressure, driver: bme280, address: 0x76, interval: 0.2}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.5}}
reflexes:
  - {{name: battery_low, sensor: battery, below: 10.8, actuator: movement, command: stop}}
  - {{name: battery_critical, sensor: battery, below: 10.2, actuator: movement, command: estop}}
  - {{name: tof_near, sensor: tof, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: tof, above: 20, actuator: movement, command: move}}
"""


@pytest.fixture
def robot(tmp_path, start_daemon, watch):
    set_devices(tmp_path / "i2c.json", devices())
    daemon = start_daemon(robot_config(tmp_path))
    return daemon, watch(daemon.url), tmp_path


def world(stream) -> dict:
    return stream.of_type("worldmodel")[-1]["data"]


def readings(stream, sensor: str) -> list[dict]:
    return [e["data"] for e in stream.of_type("sensor") if e["data"]["sensor_name"] == sensor]


def moving(stream) -> bool:
    return world(stream)["actuators"]["movement"] == "MOVING"


def test_the_battery_falling_below_the_guard_stops_the_motor(robot):
    _, stream, tmp_path = robot
    wait_for(lambda: moving(stream), what="the motor to move on a full battery")
    assert pin(tmp_path / "pins.json", "GPIO17") == 0.5
    set_devices(tmp_path / "i2c.json", devices(volts=10.6))
    after = len(stream.events)
    stream.wait_state("STOPPED", after)
    fired = [
        e["data"] for e in stream.of_type("reflex") if e["data"]["reflex_name"] == "battery_low"
    ]
    assert fired and fired[0]["condition"] == "voltage < 10.8V"
    assert pin(tmp_path / "pins.json", "GPIO17") == 0.0
    # Sitting at 10.6 V, the battery's guard keeps the motor stopped while the path is clear.
    low = wait_for(lambda: [r for r in readings(stream, "battery") if r["value"] < 10.8])
    assert low[-1]["value"] == pytest.approx(10.6, abs=0.01)
    assert not moving(stream)


def test_the_battery_falling_below_the_critical_level_latches_the_estop(robot):
    daemon, stream, tmp_path = robot
    wait_for(lambda: moving(stream), what="the motor to move")
    set_devices(tmp_path / "i2c.json", devices(volts=10.6))
    stream.wait_state("STOPPED", len(stream.events))
    assert not world(stream)["estop_latched"], "low is a stop, not yet an E-stop"
    set_devices(tmp_path / "i2c.json", devices(volts=10.0))
    wait_for(lambda: world(stream)["estop_latched"], what="the E-stop to latch")
    # As for an operator's E-stop, the stream shows it once it is on disk.
    state = re.search(r"State: (\S+)", daemon.log()).group(1)
    assert json.loads((Path(state) / "estop.json").read_text())["latched"] is True
    assert world(stream)["estop_durable"]
    names = [e["data"]["reflex_name"] for e in stream.of_type("reflex")]
    assert "battery_critical" in names and "operator_estop" in names
    # A charged battery does not release it: only an operator's reset does.
    set_devices(tmp_path / "i2c.json", devices(volts=12.6))
    count = len(readings(stream, "battery"))
    wait_for(lambda: len(readings(stream, "battery")) > count + 5, what="charged readings")
    assert readings(stream, "battery")[-1]["value"] > 12
    assert world(stream)["estop_latched"] and not moving(stream)
    assert pin(tmp_path / "pins.json", "GPIO17") == 0.0
    assert "E-STOP from battery_critical" in daemon.log()


def test_each_i2c_kind_arrives_with_its_unit_and_the_fake_chips_values(robot):
    _, stream, _ = robot
    wanted = {"battery": "V", "motor_current": "A", "tof": "cm", "air": "hPa"}
    wait_for(lambda: all(readings(stream, name) for name in wanted), what="every sensor")
    for name, unit in wanted.items():
        assert readings(stream, name)[-1]["unit"] == unit, name
    assert readings(stream, "battery")[-1]["value"] == pytest.approx(12.4, abs=0.01)
    assert readings(stream, "motor_current")[-1]["value"] == pytest.approx(-0.5, abs=0.01)
    assert readings(stream, "tof")[-1]["value"] == pytest.approx(60, abs=0.1)
    assert readings(stream, "air")[-1]["value"] == pytest.approx(1002.5, abs=0.05)


def test_a_vanished_battery_monitor_is_a_fault_that_stops_the_motor_until_it_returns(robot):
    _, stream, tmp_path = robot
    wait_for(lambda: moving(stream), what="the motor to move")
    gone = devices()
    del gone[BATTERY_AT]  # a loose wire: 0x41 NACKs
    set_devices(tmp_path / "i2c.json", gone)
    after = len(stream.events)
    stream.wait_state("STOPPED", after)
    assert pin(tmp_path / "pins.json", "GPIO17") == 0.0
    fault = wait_for(
        lambda: world(stream)["sensors"]["battery"].get("fault"), what="the battery's fault"
    )
    assert "0x41" in fault
    set_devices(tmp_path / "i2c.json", devices())
    count = len(readings(stream, "battery"))
    wait_for(lambda: len(readings(stream, "battery")) > count + 3, what="readings to resume")
    wait_for(lambda: moving(stream), what="the motor to move again")
    assert not world(stream)["sensors"]["battery"].get("fault")


def test_a_tof_signal_fail_reads_as_far_so_an_open_room_does_not_stop_the_robot(robot):
    _, stream, tmp_path = robot
    wait_for(lambda: moving(stream), what="the motor to move")
    set_devices(tmp_path / "i2c.json", devices(status=2))  # nothing reflects within 4 m
    wait_for(lambda: readings(stream, "tof")[-1]["value"] == 400, what="the far reading")
    assert moving(stream)
    set_devices(tmp_path / "i2c.json", devices(distance_cm=5))
    stream.wait_state("STOPPED", len(stream.events))
