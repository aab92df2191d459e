"""The drive's GPIO driver on gpiozero's MockFactory: each wheel's duty on
its enable pin, its direction on the other two, and the stop_mode's levels."""

from __future__ import annotations

import pytest

from anse_hw.drivers.gpio_drive import GpioDrive
from anse_hw.drivers.mockpins import MockFactory, MockPWMPin
from anse_hw.kinds import MOVING, STOPPED

LEFT = {"forward": 17, "backward": 27, "enable": 12}
RIGHT = {"forward": 22, "backward": 23, "enable": 13}


def make(stop_mode: str) -> tuple[GpioDrive, MockFactory]:
    factory = MockFactory(pin_class=MockPWMPin)
    drive = GpioDrive("base", pin_factory=factory, left=LEFT, right=RIGHT, stop_mode=stop_mode)
    return drive, factory


def levels(factory: MockFactory, pins: dict[str, int]) -> tuple[float, float, float]:
    """(forward, backward, enable) as the pins are driven."""
    return tuple(float(factory.pin(pins[k]).state) for k in ("forward", "backward", "enable"))


def test_a_signed_duty_sets_the_direction_pins_and_the_enable_pwm():
    drive, factory = make("coast")
    drive.set_wheels(0.6, -0.25)
    assert levels(factory, LEFT) == pytest.approx((1.0, 0.0, 0.6))
    assert levels(factory, RIGHT) == pytest.approx((0.0, 1.0, 0.25))
    assert drive.state == MOVING
    drive.close()


@pytest.mark.parametrize(
    ("stop_mode", "stopped"),
    [("brake", (1.0, 1.0, 1.0)), ("coast", (0.0, 0.0, 0.0))],
)
def test_stop_mode_is_what_a_stop_and_the_first_moment_leave_on_the_bridge(stop_mode, stopped):
    drive, factory = make(stop_mode)
    assert levels(factory, LEFT) == stopped, "safe from the moment the pins are set up"
    drive.set_wheels(1.0, 1.0)
    drive.drive(STOPPED)
    assert levels(factory, LEFT) == stopped
    assert levels(factory, RIGHT) == stopped
    assert drive.state == STOPPED
    drive.set_wheels(0.5, 0.5)
    drive.close()
    forward, backward, _ = levels(factory, LEFT)
    assert forward == backward, "closed: released with no direction driven"


def test_the_drive_config_checks_the_wheel_pins():
    from anse_hw import config as configuration
    from anse_hw.errors import ConfigError

    text = """
sensors: [{name: front, driver: sim}]
actuators:
  - {name: base, type: drive, driver: gpio, left: {forward: 17, backward: 27, enable: 12},
     right: {forward: 22, backward: 17, enable: 40}}
"""
    with pytest.raises(ConfigError) as error:
        configuration.parse(text)
    assert "enable: must be a BCM GPIO number from 0 to 27, got 40" in str(error.value)
    text = text.replace("enable: 40", "enable: 13")
    with pytest.raises(ConfigError, match=r"right.backward: GPIO17 is already used by base.left"):
        configuration.parse(text)
