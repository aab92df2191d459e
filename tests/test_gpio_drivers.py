"""HC-SR04 and the GPIO motor on gpiozero's own MockFactory (docs/architecture.md, "Testing")."""

from __future__ import annotations

import queue

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw.drivers.gpio_motor import GpioMotor
from anse_hw.drivers.hcsr04 import HCSR04Sensor
from anse_hw.kinds import MOVING, STOPPED
from anse_hw.readings import Sample
from tests.conftest import ExactEchoFactory, ExactEchoPin

SPEED_OF_SOUND = 343.26  # m/s, as gpiozero uses


def echo_time_for(cm: float) -> float:
    return cm / 100 * 2 / SPEED_OF_SOUND


class Rig:
    """An HC-SR04 wired to the mock factory: the trigger pin drives the echo pin,
    with an echo exactly as long as `cm` takes sound there and back."""

    def __init__(self, cm: float, interval: float = 0.02, median_of: int = 1) -> None:
        self.factory = ExactEchoFactory()
        self.echo = self.factory.pin(24)
        self.trigger = self.factory.pin(
            23, pin_class=ExactEchoPin, echo_pin=self.echo, echo_time=echo_time_for(cm)
        )
        self.samples: queue.Queue[Sample] = queue.Queue()
        self.crashes: list[BaseException] = []
        self.sensor = HCSR04Sensor(
            "front",
            interval,
            pin_factory=self.factory,
            trigger=23,
            echo=24,
            max_distance=2.0,
            median_of=median_of,
        )
        self.sensor.start(self.samples.put, lambda *a: None, self.crashes.append)

    def set_distance(self, cm: float) -> None:
        self.trigger.echo_time = echo_time_for(cm)

    def lose_echo(self) -> None:
        """The echo wire comes loose: the trigger now pulses a pin nobody reads."""
        self.trigger.echo_pin = self.factory.pin(5)

    def take(self, count: int) -> list[Sample]:
        return [self.samples.get(timeout=30) for _ in range(count)]

    def drain(self) -> None:
        while not self.samples.empty():
            self.samples.get_nowait()

    def close(self) -> None:
        self.sensor.close()
        self.factory.reset()


@pytest.mark.parametrize("cm", [17.0, 50.0, 100.0])
def test_hcsr04_distance_within_tolerance(cm):
    rig = Rig(cm)
    try:
        assert [s.value for s in rig.take(3)] == pytest.approx([cm] * 3)
        assert not rig.crashes
    finally:
        rig.close()


def test_hcsr04_no_echo_is_no_reading_never_zero_or_stale():
    rig = Rig(40.0)
    try:
        assert rig.take(3)[-1].valid
        rig.lose_echo()
        rig.take(1)  # a pulse may have been in flight when the wire came loose
        after = rig.take(4)
        assert all(not s.valid and s.value is None for s in after), after
        assert {s.problem for s in after} == {"no echo"}
        rig.set_distance(10.0)
        rig.trigger.echo_pin = rig.echo
        recovered = next(s for s in iter(lambda: rig.take(1)[0], None) if s.valid)
        # A new reading, not the 40 cm from before the wire came loose.
        assert recovered.value == pytest.approx(10.0)
    finally:
        rig.close()


def test_hcsr04_keeps_reporting_without_an_echo_instead_of_blocking():
    """gpiozero with partial=False would block forever here; we get samples."""
    rig = Rig(40.0)
    try:
        rig.lose_echo()
        rig.drain()
        assert len(rig.take(5)) == 5
    finally:
        rig.close()


def test_hcsr04_step_shows_up_on_the_next_reading():
    """No hidden median: after the obstacle moves, at most the in-flight pulse is old."""
    rig = Rig(150.0)
    try:
        rig.take(3)
        rig.set_distance(8.0)
        rig.drain()
        first, second = rig.take(2)
        assert second.value == pytest.approx(8.0), (first, second)
    finally:
        rig.close()


def test_hcsr04_median_of_three_is_explicit():
    rig = Rig(60.0, median_of=3)
    try:
        rig.take(4)
        rig.set_distance(10.0)
        rig.drain()
        samples = [s.value for s in rig.take(4)]
        assert samples[0] > 30, "one new reading does not move a median of 3"
        assert samples[-1] == pytest.approx(10.0)
    finally:
        rig.close()


def motor(**options) -> tuple[GpioMotor, MockFactory]:
    factory = MockFactory(pin_class=MockPWMPin)
    defaults = {
        "forward": None,
        "backward": None,
        "phase": None,
        "enable": None,
        "pwm": True,
        "speed": 0.6,
        "direction": "forward",
    }
    return GpioMotor("movement", pin_factory=factory, **{**defaults, **options}), factory


def levels(factory: MockFactory, *pins: int) -> list[float]:
    return [float(factory.pin(p).state) for p in pins]


def test_motor_forward_stop_and_speed_on_mock_pwm_pins():
    m, factory = motor(forward=17, backward=18, enable=12)
    assert m.state == STOPPED
    assert levels(factory, 17, 18, 12) == [0.0, 0.0, 1.0]  # enable held high
    m.drive(MOVING)
    assert m.state == MOVING
    assert levels(factory, 17, 18) == [0.6, 0.0]
    assert factory.pin(17).frequency is not None, "speed is PWM"
    m.drive(STOPPED)
    assert m.state == STOPPED
    assert levels(factory, 17, 18) == [0.0, 0.0]
    m.close()
    assert factory.pin(17).function == "input", "pins released on close"


def test_motor_direction_backward_uses_the_other_pin():
    m, factory = motor(forward=17, backward=18, direction="backward", speed=1.0)
    m.drive(MOVING)
    assert levels(factory, 17, 18) == [0.0, 1.0]
    assert m.state == MOVING
    m.close()


def test_phase_enable_motor():
    m, factory = motor(phase=5, enable=6, speed=0.5)
    m.drive(MOVING)
    assert levels(factory, 5, 6) == [0.0, 0.5]
    m.drive(STOPPED)
    assert levels(factory, 6) == [0.0]
    assert m.state == STOPPED
    m.close()


def test_motor_state_is_read_back_from_the_pins():
    m, factory = motor(forward=17, backward=18)
    m.drive(MOVING)
    factory.pin(17).state = 0  # something else drove the pin low
    assert m.state == STOPPED
    m.close()
