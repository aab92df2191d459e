"""Plain GPIO through gpiozero: a binary input (bumper, limit switch, IR
obstacle module, PIR) and an on/off output (relay, LED, fan, buzzer).

The input reports every edge the moment gpiozero sees it, and its level every
`interval` so a guard built on it is known to be alive.  The output is set up
at its safe level (gpiozero's `initial_value` writes the level as the pin
becomes an output, so an active-low relay board never clicks on at start).
On close it goes to its safe level and is released.  A pin whose safe level
is *high* (an active-low relay that must stay off) is released as an input
with its pull-up on, not as a bare input that the Pi's default pull-down
(GPIO9-27) would take low and so switch the relay on.  Pin factories differ
in what they leave behind (lgpio releases to a floating input), so an
active-low board must hold its own input high; most do (README).
"""

from __future__ import annotations

from typing import Any, ClassVar

from anse_hw.drivers.threaded import ThreadedSensor
from anse_hw.errors import DriverError
from anse_hw.kinds import OFF, ON, SENSOR_KINDS, SensorKind
from anse_hw.options import Option, bcm_pin, in_range
from anse_hw.readings import ActuatorDriver, Sample


def _errors() -> tuple[type[Exception], ...]:
    """What opening a pin can raise.  gpiozero is imported on first use, so a
    robot with no GPIO device never loads it."""
    from gpiozero.exc import GPIOZeroError

    return (GPIOZeroError, OSError, RuntimeError, ValueError)


class GpioInputSensor(ThreadedSensor):
    DRIVER = "gpio"
    KINDS = ("binary",)
    USES_GPIO = True
    DEFAULT_INTERVAL = 0.05
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "pin",
            int,
            help="BCM pin the switch or module output is wired to",
            check=bcm_pin,
            pin=True,
        ),
        Option(
            "pull_up",
            bool,
            True,
            "true: internal pull-up, active when the pin is pulled to GND (a switch to GND); "
            "false: pull-down, active when driven high",
        ),
        Option(
            "bounce_time",
            (int, float),
            None,
            "seconds to ignore after an edge (0.001 to 1: a switch settles in milliseconds; "
            "longer hides a second press)",
            in_range(0.001, 1, " seconds"),
        ),
    )

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind: SensorKind = SENSOR_KINDS["binary"],
        pin_factory: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(name, interval, max_age, kind=kind)
        self.pin = options["pin"]
        self.pull_up = options["pull_up"]
        from gpiozero import DigitalInputDevice

        try:
            self._device = DigitalInputDevice(
                self.pin,
                pull_up=self.pull_up,
                bounce_time=options["bounce_time"],
                pin_factory=pin_factory,
            )
        except _errors() as exc:
            raise DriverError(f"{name}: cannot use GPIO{self.pin} as an input: {exc}") from exc

    def describe(self) -> str:
        pull = "pull-up, active low" if self.pull_up else "pull-down, active high"
        return f"GPIO{self.pin} input ({pull})"

    def start(self, on_sample, on_fault, on_crash) -> None:
        def edge(active: bool) -> None:
            try:
                on_sample(Sample(1.0 if active else 0.0))
            except Exception as exc:
                on_crash(exc)

        self._device.when_activated = lambda: edge(True)
        self._device.when_deactivated = lambda: edge(False)
        super().start(on_sample, on_fault, on_crash)

    def measure(self, on_sample, on_fault) -> None:
        """The level every interval, so a guard on a switch that never moves
        is still known to be alive."""
        while not self.stopping.is_set():
            on_sample(Sample(float(self._device.value)))
            self.stopping.wait(self.interval)

    def close(self) -> None:
        super().close()
        if not self._device.closed:
            self._device.when_activated = self._device.when_deactivated = None
            self._device.close()


class GpioOutput(ActuatorDriver):
    DRIVER = "gpio"
    KINDS = ("output",)
    USES_GPIO = True
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "pin",
            int,
            help="BCM pin to the relay's IN, the LED or the buzzer",
            check=bcm_pin,
            pin=True,
        ),
        Option(
            "active_high",
            bool,
            True,
            "false for the common active-low relay boards (IN low = relay on)",
        ),
    )

    def __init__(
        self, name: str, safe_state: str = OFF, *, pin_factory: Any = None, **options: Any
    ) -> None:
        super().__init__(name, safe_state)
        self.pin = options["pin"]
        self.active_high = options["active_high"]
        from gpiozero import DigitalOutputDevice

        try:
            self._device = DigitalOutputDevice(
                self.pin,
                active_high=self.active_high,
                initial_value=safe_state == ON,
                pin_factory=pin_factory,
            )
        except _errors() as exc:
            raise DriverError(f"{name}: cannot drive GPIO{self.pin}: {exc}") from exc

    @property
    def safe_level_high(self) -> bool:
        return (self.safe_state == ON) == self.active_high

    def describe(self) -> str:
        level = "active high" if self.active_high else "active low"
        return f"GPIO{self.pin} output ({level}, safe {self.safe_state})"

    @property
    def state(self) -> str:
        device = self._device
        return ON if not device.closed and device.value else OFF

    def drive(self, state: str) -> None:
        if state == ON:
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        device = self._device
        if device.closed:
            return
        self.drive(self.safe_state)
        if self.safe_level_high:
            device.pin.input_with_pull("up")
        device.close()
