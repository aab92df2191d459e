"""Sensor and actuator kinds (docs/configuration.md, "Kinds") on real parts: a
directory laid out like
/sys for the DS18B20 and the CPU, gpiozero's MockFactory for GPIO, a pty for
a serial port shared by three sensors; and the config rules for kinds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw import config as configuration
from anse_hw.drivers.gpio_io import GpioInputSensor, GpioOutput
from anse_hw.drivers.serial_sensor import SerialSensor
from anse_hw.drivers.sysfs_temperature import (
    CpuTemperatureSensor,
    DS18B20Sensor,
    parse_millidegrees,
    parse_w1_slave,
)
from anse_hw.errors import DriverError
from anse_hw.kinds import OFF, ON, SENSOR_KINDS
from tests.conftest import Recorder, engine_for, wait_for
from tests.serialdev import PtyDevice
from tests.test_config import GOOD, run_cli

DEVICE = "28-0316a27936ff"


def w1_slave(milli: int, crc: str = "YES") -> str:
    return f"72 01 4b 46 7f ff 0e 10 57 : crc=57 {crc}\n72 01 4b 46 7f ff 0e 10 57 t={milli}\n"


def put_w1(root: Path, text: str, device: str = DEVICE) -> Path:
    """Write a device's w1_slave the way the kernel presents it: all at once."""
    folder = root / device
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".w1_slave"
    tmp.write_text(text)
    os.replace(tmp, folder / "w1_slave")
    return folder


# -- parsing, on text alone -------------------------------------------------


def test_w1_slave_parsing():
    assert parse_w1_slave(w1_slave(23125)).value == 23.125
    assert parse_w1_slave(w1_slave(-10500)).value == -10.5
    bad_crc = parse_w1_slave(w1_slave(23125, crc="NO"))
    assert not bad_crc.valid and "CRC" in bad_crc.problem
    power_on = parse_w1_slave(w1_slave(85000))
    assert not power_on.valid and "power-on" in power_on.problem
    assert not parse_w1_slave(w1_slave(130000)).valid, "beyond the datasheet's 125 °C"
    assert not parse_w1_slave("72 01 : crc=57 YES\n").valid, "a short read"
    assert not parse_w1_slave("garbage\nmore garbage t=abc\n").valid
    assert parse_millidegrees("47234\n").value == 47.234
    assert not parse_millidegrees("hot\n").valid


# -- DS18B20 on a /sys/bus/w1/devices fixture ----------------------------------


def ds18b20(root: Path, device: str | None = DEVICE, interval: float = 0.05) -> DS18B20Sensor:
    return DS18B20Sensor(
        "driver_temp",
        interval,
        0.5,
        kind=SENSOR_KINDS["temperature"],
        device=device,
        w1_root=str(root),
    )


def test_ds18b20_reads_rejects_and_survives_a_vanishing_device(tmp_path):
    put_w1(tmp_path, w1_slave(23125))
    sensor = ds18b20(tmp_path)
    rec = Recorder()
    rec.start(sensor)
    try:
        assert rec.take(1)[0].value == 23.125
        put_w1(tmp_path, w1_slave(24000, crc="NO"))
        wait_for(lambda: "CRC" in (rec.take(1)[0].problem or ""), what="a CRC failure")
        put_w1(tmp_path, w1_slave(85000))
        wait_for(lambda: "power-on" in (rec.take(1)[0].problem or ""), what="the 85 °C value")
        shutil.rmtree(tmp_path / DEVICE)  # unplugged: the kernel removes the device
        wait_for(lambda: rec.faults and rec.faults[-1][1], what="a fault")
        assert "w1_slave" in rec.faults[-1][0]
        put_w1(tmp_path, w1_slave(25500))  # plugged back in
        wait_for(lambda: rec.faults[-1][1] is False, what="the fault to clear")
        wait_for(lambda: rec.take(1)[0].value == 25.5, what="readings again")
        assert len(rec.faults) == 2, "one fault, one recovery: not one per poll"
        assert rec.crashes == []
    finally:
        sensor.close()


def test_ds18b20_finds_its_device_or_says_why(tmp_path):
    with pytest.raises(DriverError, match="no DS18B20"):
        ds18b20(tmp_path, device=None)
    put_w1(tmp_path, w1_slave(20000))
    assert ds18b20(tmp_path, device=None).path.parent.name == DEVICE  # the only one
    put_w1(tmp_path, w1_slave(20000), device="28-000000000002")
    with pytest.raises(DriverError, match="several DS18B20"):
        ds18b20(tmp_path, device=None)
    with pytest.raises(DriverError, match="does not exist"):
        ds18b20(tmp_path, device="28-nothere")


def test_a_w1_slave_that_turns_into_a_fifo_never_holds_up_another_sensor(tmp_path):
    """A w1_slave replaced by a FIFO nobody writes (a plain read would block
    for ever) is refused without reading: a fault on its own sensor, which
    puts its actuator in the safe state, while the other sensor streams on."""
    put_w1(tmp_path, w1_slave(20000))
    engine, published = engine_for(f"""
sensors:
  - {{name: driver_temp, type: temperature, driver: ds18b20, w1_root: {tmp_path},
     interval: 0.1, max_age: 0.4}}
  - {{name: front, driver: sim, profile: constant, value: 40, interval: 0.05}}
actuators: [{{name: m, driver: sim}}]
reflexes:
  - {{name: hot, sensor: driver_temp, above: 60, actuator: m, command: stop}}
  - {{name: go, sensor: front, above: 15, actuator: m, command: move}}
""")
    slave = tmp_path / DEVICE / "w1_slave"
    slave.unlink()
    os.mkfifo(slave)
    engine.start()
    try:

        def front_readings() -> int:
            return sum(
                e["type"] == "sensor" and e["data"]["sensor_name"] == "front"
                for e in list(published)
            )

        wait_for(lambda: front_readings() >= 20, what="the other sensor's readings")
        faults = [
            e
            for e in list(published)
            if e["type"] == "reflex" and e["data"]["reflex_name"] == "sensor_fault"
        ]
        assert faults and faults[0]["data"]["sensor"] == "driver_temp"
        assert "is a FIFO, not a regular file" in faults[0]["data"]["condition"]
        assert engine.actuators["m"].state == "STOPPED"
    finally:
        engine.close()


def test_cpu_temperature_from_a_thermal_zone_file(tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("47234\n")
    sensor = CpuTemperatureSensor(
        "cpu", 0.05, 0.5, kind=SENSOR_KINDS["temperature"], path=str(zone)
    )
    rec = Recorder()
    rec.start(sensor)
    try:
        assert rec.take(1)[0].value == 47.234
        zone.unlink()
        wait_for(lambda: rec.faults and rec.faults[-1][1], what="a fault")
    finally:
        sensor.close()
    with pytest.raises(DriverError, match="does not exist"):
        CpuTemperatureSensor("cpu", 1, 3, path=str(tmp_path / "nope"))


# -- GPIO input and output on gpiozero's MockFactory ---------------------------


def test_binary_input_reports_edges_at_once_and_its_level_steadily():
    factory = MockFactory()
    # The level is reported every 300 s: a sample within the 30 s we wait for
    # it can only be the edge's.
    sensor = GpioInputSensor(
        "bumper", 300.0, 900.0, pin_factory=factory, pin=5, pull_up=True, bounce_time=None
    )
    rec = Recorder()
    rec.start(sensor)
    try:
        assert rec.take(1)[0].value == 0.0, "pulled up: inactive"
        factory.pin(5).drive_low()  # the switch closes to GND
        assert rec.take(1, timeout=30)[0].value == 1.0, "an edge arrives without waiting 300 s"
        factory.pin(5).drive_high()
        assert rec.take(1, timeout=30)[0].value == 0.0
    finally:
        sensor.close()
    assert factory.pin(5).function == "input"


@pytest.mark.parametrize(
    ("active_high", "safe", "safe_level", "on_level"),
    [(True, OFF, 0, 1), (False, OFF, 1, 0), (True, ON, 1, 1), (False, ON, 0, 0)],
    ids=["active-high", "active-low-relay", "safe-on", "active-low-safe-on"],
)
def test_outputs_start_and_end_at_their_safe_level_without_a_glitch(
    active_high, safe, safe_level, on_level
):
    factory = MockFactory(pin_class=MockPWMPin)
    seen: list[bool] = []
    pin = factory.pin(20)
    original = pin._change_state

    def record(value):  # every level the pin is ever driven to
        seen.append(bool(value))
        return original(value)

    pin._change_state = record
    out = GpioOutput("fan", safe, pin_factory=factory, pin=20, active_high=active_high)
    assert out.state == safe
    assert pin.function == "output" and pin.state == safe_level
    assert seen and all(level == safe_level for level in seen), (
        f"the pin was driven to {seen} on the way to its safe level"
    )
    out.drive(ON)
    assert pin.state == on_level and out.state == ON
    out.drive(OFF)
    assert out.state == OFF
    out.drive(ON if safe == OFF else OFF)  # away from safe, then close
    out.close()
    assert seen[-1] == bool(safe_level), "left at the safe level"
    assert pin.function == "input", "released"
    if safe_level:  # a bare input would fall to the default pull-down: relay on
        assert pin.pull == "up" and pin.state == 1, "released with the pull-up holding it high"


# -- one serial port, three sensors ------------------------------------------------


def test_one_port_feeds_three_sensors_and_a_lost_port_faults_them_all():
    device = PtyDevice()
    made = []

    def line_sensor(name: str, kind: str, pattern: str) -> SerialSensor:
        sensor = SerialSensor(
            name,
            0.1,
            0.5,
            kind=SENSOR_KINDS[kind],
            port=device.path,
            protocol="line",
            baudrate=None,
            pattern=pattern,
            min=None,
            max=None,
            reconnect_max=0.2,
        )
        made.append(sensor)
        return sensor

    sensors = {
        "front": line_sensor("front", "distance", r"^D,(?P<cm>[0-9.]+)$"),
        "air_temp": line_sensor("air_temp", "temperature", r"^T,(?P<value>-?[0-9.]+),"),
        "air_humidity": line_sensor("air_humidity", "humidity", r"^T,[-0-9.]+,(?P<value>[0-9.]+)$"),
    }
    assert len({id(s.port) for s in made}) == 1, "the port is opened once"
    recorders = {name: Recorder() for name in sensors}
    try:
        for name, sensor in sensors.items():
            recorders[name].start(sensor)
        device.write(b"D,42.5\r\nT,23.4,41\n\x00\xffT,garbled\nD,7\nT,-2.5,88\n")
        assert [s.value for s in recorders["front"].take(2)] == [42.5, 7.0]
        assert [s.value for s in recorders["air_temp"].take(2)] == [23.4, -2.5]
        assert [s.value for s in recorders["air_humidity"].take(2)] == [41.0, 88.0]
        device.unplug()
        for rec in recorders.values():
            wait_for(lambda rec=rec: rec.faults and rec.faults[-1][1], what="every sensor faulted")
    finally:
        for sensor in made:
            sensor.close()
        device.close()


# -- the config rules of kinds ---------------------------------------------------------

KINDS_CONFIG = """\
gpio: {pin_factory: mock}
sensors:
  - {name: front, driver: sim}
  - {name: bumper, type: binary, driver: gpio, pin: 5}
  - {name: temp, type: temperature, driver: sim}
actuators:
  - {name: movement, driver: sim}
  - {name: fan, type: output, driver: gpio, pin: 20, active_high: false}
reflexes:
  - {name: bump, sensor: bumper, active: true, actuator: movement, command: stop}
  - {name: fan_on, sensor: temp, above: 45, actuator: fan, command: on}
  - {name: fan_off, sensor: temp, below: 40, actuator: fan, command: off}
"""


def test_a_robot_of_every_kind_is_valid():
    cfg = configuration.parse(KINDS_CONFIG)
    reflexes = {r.name: r for r in cfg.reflexes}
    assert reflexes["bump"].condition == "bumper active" and reflexes["bump"].guard
    assert reflexes["fan_on"].condition == "temperature > 45°C" and not reflexes["fan_on"].guard
    assert reflexes["fan_off"].guard, "off is the fan's safe state"
    assert cfg.watched_sensors() == {"bumper", "temp"}
    assert {a.name: a.safe_state for a in cfg.actuators} == {"movement": "STOPPED", "fan": "OFF"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("bumper, active: true", "bumper, below: 1", "a binary sensor takes 'active: true'"),
        ("temp, above: 45", "temp, active: true", "'active' is for binary sensors"),
        (
            "actuator: fan, command: on",
            "actuator: fan, command: move",
            "'move' is not a command for output 'fan'; it takes off | on",
        ),
        ("pin: 20", "pin: 5", "GPIO5 is already used by bumper.pin"),
        (
            "type: temperature, driver: sim",
            "type: temperature, driver: hcsr04",
            "'hcsr04' must be one of sim, serial, ds18b20, cpu",
        ),
        (
            "active_high: false}",
            "active_high: false, safe: maybe}",
            "'maybe' must be one of off, on for a output",
        ),
        ("type: binary", "type: bianry", "must be one of distance, temperature, humidity, binary"),
        ("temp, below: 40", "temp, below: 50", "both hold between 45 and 50"),
    ],
    ids=[
        "below-on-binary",
        "active-on-numeric",
        "move-to-an-output",
        "pin-used-twice-across-kinds",
        "driver-not-for-this-kind",
        "bad-safe",
        "unknown-kind",
        "fan-hysteresis-inverted",
    ],
)
def test_kind_mistakes_are_caught_at_check(tmp_path, old, new, expected):
    assert old in KINDS_CONFIG
    path = tmp_path / "robot.yaml"
    path.write_text(KINDS_CONFIG.replace(old, new))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2, result.stdout
    assert expected in result.stderr
    assert "robot.yaml:" in result.stderr and "Traceback" not in result.stderr


def check_with_sensors(tmp_path, sensors: str):
    """--check on GOOD with its sensor list replaced (its reflexes name `front`)."""
    path = tmp_path / "robot.yaml"
    path.write_text(GOOD.replace("  - name: front\n    driver: sim\n    interval: 0.1\n", sensors))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    return result


def test_two_fixed_frame_sensors_cannot_share_a_port(tmp_path):
    device = PtyDevice()
    try:
        result = check_with_sensors(
            tmp_path,
            f"  - {{name: front, driver: serial, port: {device.path}, protocol: tfmini}}\n"
            f"  - {{name: rear, driver: serial, port: {device.path}, protocol: line}}\n",
        )
        assert "robot.yaml:3: sensors[1].port: is already used by sensor 'front'" in result.stderr
    finally:
        device.close()


def test_check_finds_missing_sysfs_devices(tmp_path):
    result = check_with_sensors(
        tmp_path,
        f"  - {{name: front, driver: sim}}\n"
        f"  - {{name: t, type: temperature, driver: ds18b20, w1_root: {tmp_path}}}\n"
        f"  - {{name: c, type: temperature, driver: cpu, path: {tmp_path}/temp}}\n",
    )
    assert "robot.yaml:3: sensors[1].device: no DS18B20" in result.stderr
    assert f"robot.yaml:4: sensors[2].path: {tmp_path}/temp does not exist" in result.stderr
