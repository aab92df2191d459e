"""The interfaces every driver implements, real or fake, and the reading
they deliver.

A sensor pushes `Sample`s to a callback from its own thread; an actuator is
commanded synchronously and reports the state it drove its outputs to.  The
engine only ever sees these two interfaces, never which backend is behind them
(the gpiozero way: same device class, different pin factory).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from anse_hw.kinds import MOVING, SENSOR_KINDS, STOPPED, SensorKind
from anse_hw.options import Option

__all__ = ["ActuatorDriver", "DriveDriver", "Sample", "SensorDriver"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement in the sensor kind's unit, or the reason there is none.

    `taken` is the monotonic time the driver believes the measurement was made
    (None: just now).  A driver that knows its input sat in a buffer says so
    here, and the engine never lets an old reading move anything.
    """

    value: float | None
    problem: str | None = None
    taken: float | None = None

    @property
    def valid(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @classmethod
    def none(cls, problem: str) -> Sample:
        return cls(None, problem)


class SensorDriver(ABC):
    """A sensor that reports every measurement from its own thread.

    `DRIVER` is the YAML `driver:` name, `KINDS` the sensor kinds it can read
    (`type:`), `USES_GPIO` whether it needs a gpiozero pin factory,
    `USES_I2C` whether it needs the shared I2C bus (its `address` option is
    then checked against the other devices on that bus).
    """

    DRIVER: ClassVar[str]
    KINDS: ClassVar[tuple[str, ...]]
    USES_GPIO: ClassVar[bool] = False
    USES_I2C: ClassVar[bool] = False
    OPTIONS: ClassVar[tuple[Option, ...]] = ()
    DEFAULT_INTERVAL: ClassVar[float] = 0.1

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, problem) pairs for rules that span several options."""
        return []

    @classmethod
    def problems_across(cls, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str, str]]:
        """(item index, key, problem) for rules between the (name, options)
        of this driver's sensors, such as two that want one serial port."""
        return []

    @classmethod
    def device_problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        """What `--check` can see on this machine without opening the device
        (a serial port or a sysfs file that does not exist)."""
        return []

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind: SensorKind = SENSOR_KINDS["distance"],
    ) -> None:
        self.name = name
        self.interval = interval
        #: What the engine considers stale; a driver that can tell its input
        #: sat in a buffer for longer than this throws that input away.
        self.max_age = max_age
        self.kind = kind

    @abstractmethod
    def start(
        self,
        on_sample: Callable[[Sample], None],
        on_fault: Callable[[str, bool], None],
        on_crash: Callable[[BaseException], None],
    ) -> None:
        """Begin measuring.

        on_sample(sample) for each measurement; on_fault(text, active) when the
        device is lost (active=True) or back (False); on_crash(exc) when the
        driver itself fails and the daemon must stop.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop measuring and release the device; safe to call twice."""

    def describe(self) -> str:
        return type(self).__name__


class ActuatorDriver(ABC):
    """An actuator driven to one of its kind's states (anse_hw.kinds).

    It starts in `safe_state` (never a glitch to the other state while its
    outputs are set up) and `close()` leaves it there before releasing them.
    """

    DRIVER: ClassVar[str]
    KINDS: ClassVar[tuple[str, ...]]
    USES_GPIO: ClassVar[bool] = False
    USES_I2C: ClassVar[bool] = False
    OPTIONS: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, problem) pairs for rules that span several options."""
        return []

    @classmethod
    def state_problem(cls, options: dict[str, Any], state: str) -> str | None:
        """Why an actuator so configured cannot be driven to `state` (a
        servo's angle beyond its travel), or None.  The config asks it of
        each reflex, the engine of each operator command, so `drive` is
        never given such a state."""
        return None

    def __init__(self, name: str, safe_state: str) -> None:
        self.name = name
        self.safe_state = safe_state
        #: How a motor moves when MOVING: (reverse, speed), see `aim`.
        self.how: tuple[bool, float | None] = (False, None)

    def aim(self, reverse: bool, speed: float | None) -> None:
        """How the next `drive(MOVING)` turns a motor: against its configured
        direction (`reverse`), at `speed` 0..1 (None: its configured speed).
        Only motors are aimed; a driver that has a speed applies `how`."""
        self.how = (reverse, speed)

    @property
    @abstractmethod
    def state(self) -> str:
        """The state the outputs are driven to right now."""

    @abstractmethod
    def drive(self, state: str) -> None:
        """Drive the outputs to `state`, one of the kind's states."""

    @abstractmethod
    def close(self) -> None:
        """Leave the outputs in the safe state and release them; safe to call twice."""

    def describe(self) -> str:
        return type(self).__name__

    def start(
        self, on_fault: Callable[[str], None], on_measured: Callable[[dict[str, Any]], None]
    ) -> None:
        """Start a thread of its own, if it has one (a drive with encoders:
        its speed loop); `on_fault` when it has stopped itself and must stay
        stopped until a reset, `on_measured` with what it measured."""
        return None

    def reset_fault(self) -> str | None:
        """A reset: forget a fault of its own, or say why it still stands."""
        return None


class DriveDriver(ActuatorDriver):
    """A differential base's two wheels, each driven at a signed duty.

    The engine works out the duties (anse_hw.motion: mixing, the speed cap,
    the ramp, the limits); a driver only puts them on its outputs.  It is
    MOVING while either wheel has a duty.  `drive(STOPPED)`, as every other
    actuator is made safe, is `stop()`; `drive(MOVING)` moves nothing by
    itself, since a move needs duties (`set_wheels`).
    """

    def __init__(self, name: str, safe_state: str) -> None:
        super().__init__(name, safe_state)
        #: The duties last put on the outputs, (left, right) in -1..1.
        self.wheels: tuple[float, float] = (0.0, 0.0)

    @abstractmethod
    def set_wheels(self, left: float, right: float) -> None:
        """Drive each wheel at a signed duty in -1..1 (positive: forward)."""

    @abstractmethod
    def stop(self) -> None:
        """Both wheels stopped at once, as the H-bridge's stop_mode says."""

    @property
    def state(self) -> str:
        return MOVING if self.wheels != (0.0, 0.0) else STOPPED

    def drive(self, state: str) -> None:
        if state != MOVING:
            self.stop()
