"""Wheel encoders: the serial line parser on bytes, serial counts through a
pty (garbage and a lost port included), and gpiozero's RotaryEncoder on
MockFactory counting the edges a simulated wheel makes."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw.drivers.encoders import EncoderLines, GpioEncoders, SerialEncoders
from anse_hw.drivers.gpio_drive import GpioDrive
from anse_hw.errors import DriverError
from anse_hw.plant import WheelPlant
from tests.conftest import wait_for
from tests.quadrature import QuadratureWheel
from tests.serialdev import PtyDevice


def test_encoder_lines_counts_and_skips_garbage():
    lines = EncoderLines()
    data = b"boot v1.2\r\nE,10,-4\r\nE,11\nE,x,3\nE,12,-5\nE,1,2,3\n" + b"Z" * 600 + b"\nE,1"
    got = [c for i in range(0, len(data), 7) for c in lines.feed(data[i : i + 7])]
    assert got == [(10, -4), (12, -5)]
    assert lines.garbage == 4  # the boot line, the short, the non-numeric, the long one
    assert list(lines.feed(b"3,-7\n")) == [(13, -7)]


def test_serial_encoder_counts_through_a_pty_and_a_lost_port_is_a_fault(tmp_path):
    device = PtyDevice(tmp_path / "ttyENC")
    faults: list[tuple[str, bool]] = []
    encoders = SerialEncoders(device.path, 115200)
    encoders.start(lambda text, active: faults.append((text, active)))
    try:
        device.write(b"garbage\nE,100,-3\n\xff\xfe\nE,250,-9\n")
        wait_for(lambda: encoders.counts() == (250, -9), 10, "the counts")
        assert encoders.parser.garbage == 2
        device.unplug()
        wait_for(lambda: faults, 10, "the lost port's fault")
        text, active = faults[0]
        assert active and f"encoder port {device.path} lost" in text
        plugged = PtyDevice(tmp_path / "ttyENC")  # plugged in again
        wait_for(lambda: len(faults) > 1, 10, "the port reopened")
        assert faults[1][1] is False
        plugged.write(b"E,7,8\n")
        wait_for(lambda: encoders.counts() == (7, 8), 10, "counts after the reopen")
        plugged.close()
    finally:
        encoders.close()


def test_serial_encoder_port_missing_is_a_startup_error(tmp_path):
    with pytest.raises(DriverError, match=r"cannot open encoder port .*ttyNONE"):
        SerialEncoders(str(tmp_path / "ttyNONE"), 115200)


LEFT = {"forward": 17, "backward": 27, "enable": 12}
RIGHT = {"forward": 22, "backward": 23, "enable": 13}
LEFT_ENC = {"a": 5, "b": 6}
RIGHT_ENC = {"a": 19, "b": 26}


def test_rotary_encoder_counts_the_edges_of_a_driven_wheel():
    """The drive's PWM duty turns simulated wheels whose quadrature edges
    gpiozero's RotaryEncoder counts: forward up, backward down, unbounded
    (far past RotaryEncoder's default max_steps of 16)."""
    factory = MockFactory(pin_class=MockPWMPin)
    drive = GpioDrive("base", left=LEFT, right=RIGHT, stop_mode="brake", pin_factory=factory)
    encoders = GpioEncoders(
        {**LEFT_ENC, "counts_per_rev": 20},
        {**RIGHT_ENC, "counts_per_rev": 20},
        pin_factory=factory,
    )
    left = QuadratureWheel(factory, LEFT, LEFT_ENC, WheelPlant(max_rps=2.0, counts_per_rev=20))
    right = QuadratureWheel(factory, RIGHT, RIGHT_ENC, WheelPlant(max_rps=2.0, counts_per_rev=20))
    try:
        with left, right:
            drive.set_wheels(0.8, -0.6)
            wait_for(lambda: encoders.counts()[0] > 40, 30, "the left wheel counting")
            assert encoders.counts()[1] < -20
            drive.stop()
            wait_for(lambda: left.plant.speed < 0.01 and right.plant.speed > -0.01, 30, "stopped")
            wait_for(
                lambda: encoders.counts() == (left.plant.counts, right.plant.counts),
                10,
                "every edge counted",
            )
    finally:
        encoders.close()
        drive.close()
