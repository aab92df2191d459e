"""A DC motor on an H-bridge, driven through gpiozero.

Two wirings, as gpiozero has them: `forward`/`backward` (+ optional `enable`)
for an L298N or a DRV8833 (gpiozero.Motor, PWM on the direction pins), or
`phase`/`enable` for boards with a direction and a speed input
(gpiozero.PhaseEnableMotor).  The state we report is read back from the
device, so it is always what the pins were driven to.

A reflex or an operator may `reverse` it and give a `speed`; `direction` and
`speed` here are what a plain `move` does.  `stop_mode` (forward/backward
wiring; README, "Driving a two-wheel base") is what a stop leaves on the
bridge:

- unset: gpiozero's `Motor.stop()`, both direction pins low with `enable`
  (if wired) still high: an L298N brakes, a DRV8833 coasts.
- `brake`: both direction pins high, `enable` high: every common bridge
  (L298N, DRV8833, TB6612FNG) shorts the motor and it stops at once.
- `coast`: every pin low, `enable` too: the motor rolls out.
"""

from __future__ import annotations

from typing import Any, ClassVar

from anse_hw.errors import DriverError
from anse_hw.kinds import MOVING, STOPPED
from anse_hw.options import Option, bcm_pin, one_of, unit_interval
from anse_hw.readings import ActuatorDriver


class GpioMotor(ActuatorDriver):
    DRIVER = "gpio"
    KINDS = ("motor",)
    USES_GPIO = True
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("forward", int, None, "BCM pin to the bridge's IN1 (forward)", bcm_pin, pin=True),
        Option("backward", int, None, "BCM pin to IN2 (backward)", bcm_pin, pin=True),
        Option("phase", int, None, "BCM pin to PHASE/DIR (phase/enable boards)", bcm_pin, pin=True),
        Option(
            "enable",
            int,
            None,
            "BCM pin to ENA (forward/backward: held high) or the PWM speed input (phase/enable)",
            bcm_pin,
            pin=True,
        ),
        Option("pwm", bool, True, "drive speed with PWM (false: full speed on/off)"),
        Option(
            "speed", (int, float), 1.0, "0..1 fraction of full speed when MOVING", unit_interval
        ),
        Option(
            "direction",
            str,
            "forward",
            "forward | backward: which way MOVING turns",
            one_of("forward", "backward"),
        ),
        Option(
            "stop_mode",
            str,
            None,
            "brake | coast: what a stop leaves on the bridge (brake: both direction pins "
            "high; coast: every pin low; unset: gpiozero's, direction pins low, enable high)",
            one_of("brake", "coast"),
        ),
    )

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        """The pins must form one of the two wirings; on/off motors run at speed 1."""
        found = []
        if options["phase"] is not None:
            if options["forward"] is not None or options["backward"] is not None:
                found.append(("phase", "use either phase + enable or forward + backward, not both"))
            if options["enable"] is None:
                found.append(("enable", "required with phase (the speed input)"))
            if options["stop_mode"] is not None:
                found.append(
                    (
                        "stop_mode",
                        "is for forward + backward wiring (a phase/enable "
                        "board stops with its enable low)",
                    )
                )
        else:
            found += [
                (k, "required (or use phase + enable)")
                for k in ("forward", "backward")
                if options[k] is None
            ]
        if not options["pwm"] and options["speed"] not in (0, 1):
            found.append(("speed", "must be 1 when pwm is false (an on/off motor)"))
        return found

    def __init__(
        self, name: str, safe_state: str = STOPPED, *, pin_factory: Any = None, **options: Any
    ) -> None:
        super().__init__(name, safe_state)
        self.options = options
        self.speed = float(options["speed"])
        self.reverse = options["direction"] == "backward"
        self.stop_mode = options.get("stop_mode")
        self.pwm = options.get("pwm", True)
        from gpiozero import Motor, PhaseEnableMotor
        from gpiozero.exc import GPIOZeroError

        try:
            if options.get("phase") is not None:
                self._device = PhaseEnableMotor(
                    options["phase"],
                    options["enable"],
                    pwm=options["pwm"],
                    pin_factory=pin_factory,
                )
            else:
                self._device = Motor(
                    options["forward"],
                    options["backward"],
                    enable=options.get("enable"),
                    pwm=options["pwm"],
                    pin_factory=pin_factory,
                )
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            raise DriverError(f"{name}: cannot drive the motor pins: {exc}") from exc
        self._stop()

    def describe(self) -> str:
        o = self.options
        if o.get("phase") is not None:
            return f"GPIO motor phase GPIO{o['phase']} enable GPIO{o['enable']}"
        return f"GPIO motor forward GPIO{o['forward']} backward GPIO{o['backward']}"

    @property
    def state(self) -> str:
        device = self._device
        return MOVING if device is not None and not device.closed and device.value else STOPPED

    def drive(self, state: str) -> None:
        if state != MOVING:
            self._stop()
            return
        reverse, speed = self.how
        speed = self.speed if speed is None else speed
        if not self.pwm:
            speed = 1.0 if speed > 0 else 0.0  # an on/off motor: on or off
        enable = getattr(self._device, "enable_device", None)
        if enable is not None and not enable.value:
            enable.on()  # after a coast
        if reverse != self.reverse:
            self._device.backward(speed)
        else:
            self._device.forward(speed)

    def _stop(self) -> None:
        """Stopped, as `stop_mode` says (the module's docstring)."""
        device = self._device
        device.stop()
        if self.stop_mode is None or self.options.get("phase") is not None:
            return
        enable = getattr(device, "enable_device", None)
        if self.stop_mode == "brake":
            device.forward_device.on()
            device.backward_device.on()
        elif enable is not None:
            enable.off()

    def close(self) -> None:
        if not self._device.closed:
            self._stop()
            self._device.close()
