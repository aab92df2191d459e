"""HC-SR04 ultrasonic sensor through gpiozero's DistanceSensor.

gpiozero already times the echo pulse on its own background thread; we keep
that measurement and drop its smoothing.  Out of the box its `distance`
property either blocks forever without an echo (partial=False) or returns 0.0
(partial=True), and its median of 9 samples at 60 ms lags a step by ~300 ms.
Here every raw measurement is pushed the moment gpiozero takes it: a missing
echo becomes "no reading", and any filtering is an explicit, short median
(`median_of`, default 1 = none).
"""

from __future__ import annotations

import functools
import warnings
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from anse_hw.errors import DriverError
from anse_hw.kinds import SENSOR_KINDS, SensorKind
from anse_hw.options import Option, bcm_pin, in_range
from anse_hw.readings import Sample, SensorDriver

if TYPE_CHECKING:
    from gpiozero import DistanceSensor


@functools.cache
def _sampled_distance_sensor() -> type[DistanceSensor]:
    """gpiozero's DistanceSensor with a hook on every raw measurement.  Made on
    first use, so that only a robot with GPIO devices imports gpiozero."""
    from gpiozero import DistanceSensor

    class SampledDistanceSensor(DistanceSensor):
        def __init__(
            self, *args: Any, on_raw: Callable[[float | None], None], **kwargs: Any
        ) -> None:
            self._on_raw = on_raw
            super().__init__(*args, **kwargs)

        def _read(self) -> float | None:
            value = super()._read()
            self._on_raw(value)
            return value

        def close(self) -> None:
            # gpiozero closes the trigger pin before stopping its sampling thread,
            # which can then die mid-pulse on a None pin; stop the thread first.
            queue = getattr(self, "_queue", None)
            if queue is not None:
                queue.stop()
            super().close()

    return SampledDistanceSensor


class HCSR04Sensor(SensorDriver):
    DRIVER = "hcsr04"
    KINDS = ("distance",)
    USES_GPIO = True
    DEFAULT_INTERVAL = 0.06
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("trigger", int, help="BCM pin wired to TRIG", check=bcm_pin, pin=True),
        Option(
            "echo",
            int,
            help="BCM pin wired to ECHO (through a 5 V → 3.3 V divider)",
            check=bcm_pin,
            pin=True,
        ),
        Option(
            "max_distance",
            (int, float),
            2.0,
            "metres; echoes beyond read as this (0.05 to 6: the HC-SR04 reaches 4 m, its "
            "waterproof cousins 6 m; more only lengthens the wait for a missing echo)",
            in_range(0.05, 6, " m"),
        ),
        Option(
            "median_of",
            int,
            1,
            "median over the last N readings, 1 = no filtering (1 to 15: each reading "
            "more delays a step by half an interval)",
            in_range(1, 15),
        ),
    )

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind: SensorKind = SENSOR_KINDS["distance"],
        pin_factory: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(name, interval, max_age, kind=kind)
        self.trigger = options["trigger"]
        self.echo = options["echo"]
        self.max_distance = float(options["max_distance"])
        self._window: deque[float] = deque(maxlen=options["median_of"])
        self._on_sample: Callable[[Sample], None] | None = None
        self._on_crash: Callable[[BaseException], None] | None = None
        import statistics  # here: it brings decimal and fractions, 0.6 MB

        from gpiozero.exc import DistanceSensorNoEcho, GPIOZeroError, PWMSoftwareFallback

        self._median = statistics.median

        # Open the pins now, so a pin in use is a start-up error; measurements
        # are only passed on once start() has given us somewhere to send them.
        with warnings.catch_warnings():
            # "use pigpio for accuracy" is advice, not an error.
            warnings.simplefilter("ignore", PWMSoftwareFallback)
            try:
                self._device: DistanceSensor | None = _sampled_distance_sensor()(
                    echo=self.echo,
                    trigger=self.trigger,
                    max_distance=self.max_distance,
                    queue_len=1,
                    partial=True,
                    pin_factory=pin_factory,
                    on_raw=self._on_raw,
                )
            except (GPIOZeroError, OSError, RuntimeError, ValueError) as exc:
                raise DriverError(
                    f"{name}: cannot use GPIO{self.trigger}/GPIO{self.echo}: {exc}"
                ) from exc
        # gpiozero reads the wait between samples on every loop: ours, not its 60 ms.
        self._device._queue.sample_wait = self.interval
        # A missing echo is reported as a Sample, not as a warning on stderr.
        warnings.filterwarnings("ignore", category=DistanceSensorNoEcho)

    def describe(self) -> str:
        return f"HC-SR04 trigger GPIO{self.trigger} echo GPIO{self.echo}"

    def start(self, on_sample, on_fault, on_crash) -> None:
        self._on_crash = on_crash
        self._on_sample = on_sample

    def _on_raw(self, value: float | None) -> None:
        """Runs on gpiozero's sampling thread after every trigger pulse."""
        on_sample, on_crash = self._on_sample, self._on_crash
        if on_sample is None:  # not started yet, or closed
            return
        try:
            on_sample(self._filter(value))
        except Exception as exc:
            on_crash(exc)

    def _filter(self, value: float | None) -> Sample:
        """gpiozero's fraction of max_distance → centimetres, through the short median."""
        if value is None:
            self._window.clear()  # never let an old echo stand in for a missing one
            return Sample.none("no echo")
        self._window.append(value * self.max_distance * 100.0)
        return Sample(self._median(self._window))

    def close(self) -> None:
        self._on_sample = None
        device, self._device = self._device, None
        if device is not None:
            device.close()
