"""Hobby servos as actuators: on a PCA9685 channel (`driver: pca9685`) or
on a GPIO pin through gpiozero's AngularServo (`driver: gpio`).

A servo's state is its angle (anse_hw.kinds, the `servo` kind); its safe
state is its `safe:` angle, where it goes at start, on a guard, on the
E-stop, on SIGTERM and under `--safe-stop`.  Both drivers map the angle to
a pulse width the same way (ServoRange: min_angle..max_angle over
min_pulse_us..max_pulse_us), so one servo behaves the same on either.  An
angle beyond the travel is refused (`state_problem`): the config refuses such a
reflex and the API such a command, so `drive` never gets one.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from anse_hw.drivers.i2c.bus import FIRST_ADDRESS, LAST_ADDRESS, BusFault
from anse_hw.drivers.i2c.pca9685 import CHANNELS, PCA9685, Servo, ServoRange
from anse_hw.errors import DriverError
from anse_hw.kinds import angle_of
from anse_hw.options import Option, bcm_pin, in_range
from anse_hw.readings import ActuatorDriver

__all__ = ["TRAVEL_OPTIONS", "GpioServo", "PCA9685Servo", "ServoDriver"]

#: A servo's travel; every servo driver takes these keys.
TRAVEL_OPTIONS: tuple[Option, ...] = (
    Option(
        "min_angle",
        (int, float),
        0.0,
        "the angle of the shortest pulse, in degrees",
        in_range(-360, 360, "°"),
    ),
    Option(
        "max_angle",
        (int, float),
        180.0,
        "the angle of the longest pulse, in degrees",
        in_range(-360, 360, "°"),
    ),
    Option(
        "min_pulse_us",
        (int, float),
        1000.0,
        "the pulse width at min_angle in µs (many SG90s want 500 for their full travel)",
        in_range(100, 3000),
    ),
    Option(
        "max_pulse_us",
        (int, float),
        2000.0,
        "the pulse width at max_angle in µs (many SG90s want 2400)",
        in_range(100, 3000),
    ),
)


def travel(options: dict[str, Any]) -> ServoRange | None:
    """The travel the options give (None: one of them was refused already)."""
    values = [options[o.key] for o in TRAVEL_OPTIONS]
    return None if None in values else ServoRange(*values)


class ServoDriver(ActuatorDriver):
    """What both servo drivers share: the travel, the angle as the state."""

    KINDS = ("servo",)

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        found = travel(options)
        problem = found.problem() if found else None
        return [("max_angle", problem)] if problem else []

    @classmethod
    def state_problem(cls, options: dict[str, Any], state: str) -> str | None:
        found = travel(options)
        if found is None or found.problem():
            return None  # said already, at the travel's own keys
        try:
            found.pulse_us(angle_of(state))
        except ValueError as exc:
            return f"{exc}, its travel"
        return None

    def __init__(self, name: str, safe_state: str, options: dict[str, Any]) -> None:
        super().__init__(name, safe_state)
        self.travel = ServoRange(*(options[o.key] for o in TRAVEL_OPTIONS))
        self._state = safe_state

    @property
    def state(self) -> str:
        return self._state

    def drive(self, state: str) -> None:
        self._move(angle_of(state))
        self._state = state

    def _move(self, angle: float) -> None:
        raise NotImplementedError


class PCA9685Servo(ServoDriver):
    """A servo on one channel of a PCA9685 at 50 Hz, on the run's shared I2C
    bus: the servos of one board share one chip object, and so its lock."""

    DRIVER = "pca9685"
    USES_I2C = True
    CHIP = PCA9685.CHIP
    #: Servos on one board agree on these (anse_hw.config.rules).
    CHIP_OPTIONS = ()
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "address",
            int,
            0x40,
            "the board's 7-bit I2C address (default 0x40)",
            in_range(FIRST_ADDRESS, LAST_ADDRESS),
        ),
        Option("channel", int, help="the board's output, 0 to 15", check=in_range(0, CHANNELS - 1)),
        *TRAVEL_OPTIONS,
    )

    def __init__(self, name: str, safe_state: str, *, i2c: Any, **options: Any) -> None:
        super().__init__(name, safe_state, options)
        self.address = options["address"]
        self.channel = options["channel"]
        board = i2c.attach(self.address, lambda bus, address: PCA9685(bus, address)).device
        self._shared = i2c
        self._servo = Servo(board, self.channel, self.travel, angle_of(safe_state))
        try:
            self._servo.safe()
        except BusFault as exc:
            i2c.detach()
            raise DriverError(
                f"{name}: cannot drive the PCA9685 at 0x{self.address:02x}: {exc}"
            ) from exc
        self._closed = False

    def _move(self, angle: float) -> None:
        self._servo.move(angle)

    def describe(self) -> str:
        return f"PCA9685 0x{self.address:02x} channel {self.channel} (safe {self.safe_state}°)"

    def close(self) -> None:
        """To the safe angle, and left there: the board keeps pulsing after
        the process ends, so the servo holds it.  A board gone already
        holds nothing (its servos are limp)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(BusFault):
            self.drive(self.safe_state)
        self._shared.detach()


class GpioServo(ServoDriver):
    """A servo's signal wire on a GPIO pin: gpiozero's AngularServo, 50 Hz
    (software PWM on most pin factories: fine for a pan/tilt, jittery under
    load; a PCA9685 holds a steadier pulse)."""

    DRIVER = "gpio"
    USES_GPIO = True
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("pin", int, help="BCM pin to the servo's signal wire", check=bcm_pin, pin=True),
        *TRAVEL_OPTIONS,
    )

    def __init__(
        self, name: str, safe_state: str, *, pin_factory: Any = None, **options: Any
    ) -> None:
        super().__init__(name, safe_state, options)
        self.pin = options["pin"]
        from gpiozero import AngularServo
        from gpiozero.exc import GPIOZeroError

        try:
            self._device = AngularServo(
                self.pin,
                initial_angle=angle_of(safe_state),
                min_angle=self.travel.min_angle,
                max_angle=self.travel.max_angle,
                min_pulse_width=self.travel.min_pulse_us / 1e6,
                max_pulse_width=self.travel.max_pulse_us / 1e6,
                frame_width=0.02,
                pin_factory=pin_factory,
            )
        except (GPIOZeroError, OSError, RuntimeError, ValueError) as exc:
            raise DriverError(f"{name}: cannot drive a servo on GPIO{self.pin}: {exc}") from exc

    def _move(self, angle: float) -> None:
        self._device.angle = angle

    def describe(self) -> str:
        return f"GPIO{self.pin} servo (safe {self.safe_state}°)"

    def close(self) -> None:
        """To the safe angle, then the pin is released (the servo goes limp
        where it is: at its safe angle)."""
        if self._device.closed:
            return
        self.drive(self.safe_state)
        self._device.close()
