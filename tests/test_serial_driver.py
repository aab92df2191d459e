"""Serial distance sensors over a pseudo-terminal, opened by pyserial."""

from __future__ import annotations

import time

import pytest

from anse_hw.drivers.protocols import a02yyuw_frame, tfmini_frame
from anse_hw.drivers.serial_sensor import SerialSensor
from anse_hw.errors import DriverError
from tests.conftest import Recorder, wait_for
from tests.serialdev import PtyDevice


def open_sensor(device: PtyDevice, protocol: str, **options) -> SerialSensor:
    defaults = {
        "port": device.path,
        "protocol": protocol,
        "baudrate": None,
        "pattern": None,
        "reconnect_max": 0.2,
    }
    return SerialSensor("lidar", 0.01, **{**defaults, **options})


def corrupted(frame: bytes) -> bytes:
    """The same frame with its checksum byte wrong."""
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


@pytest.fixture
def device():
    dev = PtyDevice()
    yield dev
    dev.close()


@pytest.mark.parametrize(
    ("protocol", "options", "good", "corrupt", "expected"),
    [
        (
            "tfmini",
            {},
            [tfmini_frame(42), tfmini_frame(7)],
            corrupted(tfmini_frame(99)),
            [42.0, 7.0],
        ),
        (
            "a02yyuw",
            {},
            [a02yyuw_frame(1234), a02yyuw_frame(80)],
            corrupted(a02yyuw_frame(500)),
            [123.4, 8.0],
        ),
        (
            "line",
            {"pattern": r"^D,(?P<cm>[0-9.]+)$"},
            [b"D,42.5\r\n", b"D,7\n"],
            b"D,xx\n",
            [42.5, 7.0],
        ),
    ],
)
def test_each_protocol_over_a_pty(device, protocol, options, good, corrupt, expected):
    sensor = open_sensor(device, protocol, **options)
    recorder = Recorder()
    recorder.start(sensor)
    try:
        # garbage, a corrupt frame, then a good frame written in two halves
        device.write(b"\x00\x13\x59garbage" + corrupt + good[0][:2])
        device.write(good[0][2:] + corrupt + good[1])
        got = recorder.take(2)
        assert [s.value for s in got] == expected
        assert recorder.samples.empty()
        assert not recorder.crashes
    finally:
        sensor.close()


def test_tfmini_low_signal_is_reported_as_no_reading(device):
    sensor = open_sensor(device, "tfmini")
    recorder = Recorder()
    recorder.start(sensor)
    try:
        device.write(tfmini_frame(42, strength=20) + tfmini_frame(43))
        weak, good = recorder.take(2)
        assert not weak.valid and weak.value is None
        assert good.value == 43.0
    finally:
        sensor.close()


def test_a_missing_port_is_a_clear_startup_error(tmp_path):
    with pytest.raises(DriverError, match="does not exist"):
        SerialSensor(
            "lidar",
            0.01,
            port=str(tmp_path / "ttyUSB9"),
            protocol="tfmini",
            baudrate=None,
            pattern=None,
            reconnect_max=1,
        )


def test_unplug_reports_loss_then_reopens_with_backoff(tmp_path):
    link = tmp_path / "ttyLIDAR"
    device = PtyDevice(link)
    sensor = open_sensor(device, "tfmini")
    recorder = Recorder()
    recorder.start(sensor)
    try:
        device.write(tfmini_frame(50))
        assert recorder.take(1)[0].value == 50.0
        device.unplug()
        wait_for(lambda: recorder.faults, what="the loss to be reported")
        text, active = recorder.faults[0]
        assert active and "lost" in text
        attempts_before = sensor.port.reopen_attempts
        wait_for(lambda: sensor.port.reopen_attempts >= attempts_before + 5, what="reopen attempts")
        device = PtyDevice(link)  # plugged in again, same name, new pty
        wait_for(lambda: len(recorder.faults) >= 2, what="the port to be reopened")
        assert recorder.faults[1] == (f"serial port {link} reopened", False)
        device.write(tfmini_frame(61))
        assert recorder.take(1)[0].value == 61.0
        assert not recorder.crashes
    finally:
        sensor.close()
        device.close()


def test_reopen_delay_is_capped_and_does_not_spin(tmp_path):
    link = tmp_path / "ttyGONE"
    device = PtyDevice(link)
    sensor = open_sensor(device, "tfmini", reconnect_max=0.2)
    recorder = Recorder()
    recorder.start(sensor)
    try:
        device.unplug()
        wait_for(lambda: recorder.faults, what="the loss")
        start, began = sensor.port.reopen_attempts, time.monotonic()
        # Back-off doubles from 50 ms up to the 200 ms cap: 10 attempts take at
        # least 0.1 + 0.2 + 8 x 0.2 s.  A busy loop would do them in microseconds.
        # (A lower bound: a busy machine only makes the wait longer.)
        wait_for(lambda: sensor.port.reopen_attempts >= start + 10, timeout=30, what="attempts")
        assert time.monotonic() - began >= 1.5
    finally:
        sensor.close()
