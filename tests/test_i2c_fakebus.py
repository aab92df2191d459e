"""The register-level fake I2C bus: its file, NACKs as bus faults, the
i2cdetect-style probe, the per-device check `--check` will use, and the
retry back-off."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from anse_hw.drivers.i2c.bus import BusFault, backoff_delay, probe, talking_to
from anse_hw.drivers.i2c.chips import check_device
from anse_hw.drivers.i2c.fakebus import MAX_FAKE_FILE, FakeBus, FakeFileError
from anse_hw.drivers.i2c.ina219 import INA219, PowerReading

ROBOT = {
    "0x41": {"device": "ina219", "bus_voltage": 12.0, "current": 0.8, "shunt_ohms": 0.1},
    "0x29": {"device": "vl53l1x", "distance_cm": 42},
    "0x76": {"device": "bme280", "temperature": 21.5},
    "0x40": {"device": "pca9685"},
}


def write_fake(path: Path, content: Any) -> None:
    """Replace the file atomically, as a test changing a running daemon's devices should."""
    text = content if isinstance(content, str) else json.dumps(content)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def fake_file(tmp_path: Path) -> Path:
    path = tmp_path / "i2c.json"
    write_fake(path, ROBOT)
    return path


def test_readings_follow_the_file_as_it_changes(fake_file):
    battery = INA219(FakeBus(str(fake_file)), 0x41, shunt_ohms=0.1, max_current=2)
    assert battery.read().voltage == pytest.approx(12.0)
    write_fake(fake_file, {**ROBOT, "0x41": {**ROBOT["0x41"], "bus_voltage": 10.7}})
    reading = battery.read()
    assert reading.voltage == pytest.approx(10.7)
    assert reading.current == pytest.approx(0.8)


def test_a_device_missing_from_the_file_nacks_as_a_bus_fault(fake_file):
    bus = FakeBus(str(fake_file))
    battery = INA219(bus, 0x41, shunt_ohms=0.1)
    battery.read()
    write_fake(fake_file, {k: v for k, v in ROBOT.items() if k != "0x41"})
    with pytest.raises(BusFault) as caught:
        battery.read()
    assert str(caught.value) == "no answer from 0x41 (Remote I/O error)"
    assert caught.value.errno == errno.EREMOTEIO
    # Back on the bus, it kept its registers (it stayed powered): readings
    # resume at once, with no recalibration.
    write_fake(fake_file, ROBOT)
    assert battery.read() == PowerReading(pytest.approx(12.0), pytest.approx(0.8))


def test_any_adapter_error_is_a_bus_fault():
    expected = r"no answer from 0x76 \(Input/output error\)"
    with pytest.raises(BusFault, match=expected), talking_to(0x76):
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def test_probe_finds_the_addresses_that_ack(fake_file):
    assert probe(FakeBus(str(fake_file))) == [0x29, 0x40, 0x41, 0x76]


def test_check_device_accepts_each_chip_where_it_is(fake_file):
    bus = FakeBus(str(fake_file))
    for key, entry in ROBOT.items():
        assert check_device(bus, entry["device"], int(key, 16)) is None


@pytest.mark.parametrize(
    ("chip", "address", "expected"),
    [
        ("ina219", 0x45, "nothing answers at 0x45"),
        ("bme280", 0x41, "chip ID 0x00, not the BME280's 0x60"),
        ("vl53l1x", 0x76, "model ID 0x0000"),
        ("ina219", 0x76, "not an INA219"),
        ("ina219", 0x40, "is a PCA9685, not the configured INA219"),
        ("pca9685", 0x41, "does not look like a PCA9685"),
    ],
)
def test_check_device_names_a_wrong_address_or_chip(fake_file, chip, address, expected):
    assert expected in (check_device(FakeBus(str(fake_file)), chip, address) or "")


def test_check_device_never_writes_to_a_pca9685(fake_file):
    bus = FakeBus(str(fake_file))
    board = bus.chip(0x40)
    before = bytes(board.memory)
    for chip in ("ina219", "bme280", "vl53l1x"):
        check_device(bus, chip, 0x40)
    assert bytes(board.memory) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"0x41": {"device": "ina219"}, "0x41": {"device": "bme280"}}', "'0x41' is given twice"),
        ('{"0x41": {"device": "ina219"}, "65": {"device": "bme280"}}', "0x41 is given twice"),
        ("{nope", "not JSON"),
        ("[1, 2]", "top level must be an object"),
        ('{"0x80": {"device": "ina219"}}', "not an I2C address"),
        ('{"0x41": {"device": "ina226"}}', "device must be one of bme280, ina219"),
        ('{"0x41": {"device": "ina219", "voltage": 3}}', "ina219 has no value 'voltage'"),
        (
            '{"0x41": {"device": "ina219", "bus_voltage": 40}}',
            "bus_voltage must be from 0 to 32.76",
        ),
        ('{"0x29": {"device": "vl53l1x", "status": 99}}', "ULD range status"),
        ('{"0x41": {"device": "ina219", "current": "1"}}', "current must be a number"),
        ('{"0x41": "ina219"}', "must be an object"),
    ],
)
def test_a_bad_fake_file_is_a_one_line_error_naming_it(tmp_path, content, expected):
    path = tmp_path / "i2c.json"
    write_fake(path, content)
    with pytest.raises(FakeFileError) as caught:
        FakeBus(str(path))
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_the_fake_file_is_read_through_files_py(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_FAKE_FILE + 1))
    with pytest.raises(FakeFileError, match="larger than 64 KiB"):
        FakeBus(str(big))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(FakeFileError, match="is a FIFO"):
        FakeBus(str(fifo))
    with pytest.raises(FakeFileError, match="cannot be read"):
        FakeBus(str(tmp_path / "missing.json"))


def test_a_broken_rewrite_keeps_the_devices_and_says_why(fake_file, caplog):
    bus = FakeBus(str(fake_file))
    battery = INA219(bus, 0x41, shunt_ohms=0.1)
    write_fake(fake_file, '{"0x41": ')
    assert battery.read().voltage == pytest.approx(12.0)
    assert bus.problem is not None and "not JSON" in bus.problem
    assert "devices stay as they were" in caplog.text
    write_fake(fake_file, {"0x41": {**ROBOT["0x41"], "bus_voltage": 11.0}})
    assert battery.read().voltage == pytest.approx(11.0)
    assert bus.problem is None


def test_smbus_calls_keep_smbus_semantics(fake_file):
    bus = FakeBus(str(fake_file))
    # An SMBus word is little-endian: the INA219's config 0x399F reads 0x9F39.
    assert bus.read_word_data(0x41, 0x00) == 0x9F39
    with pytest.raises(ValueError):
        bus.read_i2c_block_data(0x41, 0x00, 33)


def test_backoff_doubles_from_the_first_delay_up_to_the_cap():
    assert [backoff_delay(n) for n in range(8)] == [0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert backoff_delay(10**9) == 2.0  # no overflow, however long a device stays away
    assert backoff_delay(3, first=1, cap=30) == 4


@pytest.mark.parametrize(("failures", "first", "cap"), [(-1, 0.05, 2), (1, 0, 2), (1, 3, 2)])
def test_backoff_refuses_nonsense_settings(failures, first, cap):
    with pytest.raises(ValueError):
        backoff_delay(failures, first, cap)
