"""A differential base: two DC motors on an H-bridge (an L298N, a TB6612FNG),
driven through gpiozero.

Each wheel has two direction pins and an enable pin.  The direction pins
are plain outputs (forward: IN1 high, IN2 low; backward: the other way) and
the enable pin's PWM duty is the wheel's speed, so the mock pin factory's
state file shows each wheel's duty on its `enable` pin.  (gpiozero's own
`Motor` does it the other way round: PWM on the direction pins, `enable`
held high.)

`stop_mode` is what a stop leaves on the bridge (README, "Driving a
two-wheel base"; docs/safety.md M1):

- `brake`: both direction pins high and enable high.  An L298N reads IN1 =
  IN2 with EN high as "fast motor stop", a TB6612FNG reads IN1 = IN2 = high
  as "short brake": the motor's terminals are shorted and it stops within
  a fraction of a turn.  (gpiozero's `Motor.stop()` with an enable pin sets
  both direction pins low with enable still high: a brake on an L298N, a
  coast on a TB6612FNG.  Both high brakes on both.)
- `coast`: every pin low: the bridge's outputs float and the wheel rolls
  out on its own momentum.
"""

from __future__ import annotations

from typing import Any, ClassVar

from anse_hw.errors import DriverError
from anse_hw.kinds import STOPPED
from anse_hw.options import Option, bcm_pin, one_of
from anse_hw.readings import DriveDriver

WHEEL_PINS = ("forward", "backward", "enable")


def wheel_problem(value: Any) -> str | None:
    """A wheel's pins: {forward, backward, enable}, each a BCM number."""
    if set(value) != set(WHEEL_PINS):
        return "must be {forward: PIN, backward: PIN, enable: PIN} (the enable pin is the PWM)"
    for key in WHEEL_PINS:
        pin = value[key]
        if isinstance(pin, bool) or not isinstance(pin, int) or bcm_pin(pin):
            return f"{key}: must be a BCM GPIO number from 0 to 27, got {pin!r}"
    return None


wheel_problem.allows = "{forward, backward, enable} BCM pins"  # type: ignore[attr-defined]


class _Wheel:
    """One motor's three pins."""

    def __init__(self, pins: dict[str, int], brake: bool, pin_factory: Any) -> None:
        from gpiozero import DigitalOutputDevice, PWMOutputDevice

        self.brake = brake
        self.forward = DigitalOutputDevice(
            pins["forward"], initial_value=brake, pin_factory=pin_factory
        )
        self.backward = DigitalOutputDevice(
            pins["backward"], initial_value=brake, pin_factory=pin_factory
        )
        self.enable = PWMOutputDevice(
            pins["enable"], initial_value=1.0 if brake else 0.0, pin_factory=pin_factory
        )

    def set(self, duty: float) -> None:
        """A signed duty; the pin that must go low goes low first, so the
        bridge never sees both directions high with the enable at a duty."""
        if duty == 0:
            self.stop()
            return
        on, off = (self.forward, self.backward) if duty > 0 else (self.backward, self.forward)
        off.off()
        self.enable.value = abs(duty)
        on.on()

    def stop(self) -> None:
        if self.brake:
            self.forward.on()
            self.backward.on()
            self.enable.value = 1.0
        else:
            self.enable.value = 0.0
            self.forward.off()
            self.backward.off()

    def close(self) -> None:
        for device in (self.enable, self.forward, self.backward):
            device.close()


class GpioDrive(DriveDriver):
    DRIVER = "gpio"
    KINDS = ("drive",)
    USES_GPIO = True
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "left",
            dict,
            None,
            "the left motor's pins: {forward, backward, enable}",
            wheel_problem,
            pin=True,
        ),
        Option(
            "right",
            dict,
            None,
            "the right motor's pins: {forward, backward, enable}",
            wheel_problem,
            pin=True,
        ),
        Option(
            "stop_mode",
            str,
            "brake",
            "brake | coast: what a stop leaves on the H-bridge (brake: both direction "
            "pins and enable high; coast: every pin low)",
            one_of("brake", "coast"),
        ),
    )

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            (k, "required: {forward, backward, enable}")
            for k in ("left", "right")
            if options[k] is None
        ]

    def __init__(
        self, name: str, safe_state: str = STOPPED, *, pin_factory: Any = None, **options: Any
    ) -> None:
        super().__init__(name, safe_state)
        self.options = options
        brake = options["stop_mode"] == "brake"
        from gpiozero.exc import GPIOZeroError

        self._wheels: list[_Wheel] = []
        try:
            for side in ("left", "right"):
                self._wheels.append(_Wheel(options[side], brake, pin_factory))
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self.close()
            raise DriverError(f"{name}: cannot drive the wheel pins: {exc}") from exc

    def describe(self) -> str:
        left, right = self.options["left"], self.options["right"]
        return (
            f"GPIO drive left enable GPIO{left['enable']}, right enable GPIO{right['enable']} "
            f"({self.options['stop_mode']} on stop)"
        )

    def set_wheels(self, left: float, right: float) -> None:
        for wheel, duty in zip(self._wheels, (left, right), strict=True):
            wheel.set(duty)
        self.wheels = (left, right)

    def stop(self) -> None:
        for wheel in self._wheels:
            wheel.stop()
        self.wheels = (0.0, 0.0)

    def close(self) -> None:
        if not self._wheels:
            return  # closed already
        self.stop()
        for wheel in self._wheels:
            wheel.close()
        self._wheels = []
