"""The interfaces every driver implements, real or fake.

A sensor pushes `Sample`s to a callback from its own thread; an actuator is
commanded synchronously and reports the state it drove its outputs to.  The
engine only ever sees these two interfaces, never which backend is behind them
(the gpiozero way: same device class, different pin factory).
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from anse_hw import files
from anse_hw.drivers.kinds import SENSOR_KINDS, SensorKind


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


REQUIRED: Any = object()


@dataclass(frozen=True)
class Option:
    """One driver-specific YAML key: its type, default and how to check it.

    `check` returns a sentence saying what is wrong, or None.  `pin` marks a
    BCM GPIO number so the config can catch a pin used twice.  An explicit
    `null` means "the default", unless `null_is_off`: then it means None
    (`discovery_prefix: null` turns discovery off).
    """

    key: str
    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    pin: bool = False
    null_is_off: bool = False


def in_range(low: float, high: float, unit: str = "") -> Callable[[float], str | None]:
    """A check for a number from `low` to `high`, both included.  Every
    number has an upper bound too: a huge value is never what a user meant,
    and some (1e308 MB) overflow where they are used."""

    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be from {low:g} to {high:g}{unit}"

    return check


#: Linux's PATH_MAX less the terminating NUL: the longest path open() takes.
MAX_PATH_BYTES = 4095


def a_path(value: str) -> str | None:
    """A file or directory name the daemon will open: checked here, so that
    `--check` says what the C layer would only say with a traceback (NUL)
    or at run time (too long), and '' never means "here" or "off"."""
    problem = files.path_problem(value)
    if problem:
        return problem
    if len(os.fsencode(value)) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes, the most a path can have"
    return None


def unit_interval(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "must be one of " + ", ".join(choices)

    return check


def bcm_pin(value: int) -> str | None:
    return None if 0 <= value <= 27 else "must be a BCM GPIO number from 0 to 27"


class DriverError(Exception):
    """A device could not be opened or used; the message is for the user.

    `key` is the config key it is about (("gpio", "mock_state_file")), when
    one is: the message starts with it, and `--check` shows the file and
    line of that key before `reason`, the message without it.
    """

    def __init__(self, reason: str, key: tuple[str, ...] = ()) -> None:
        super().__init__(f"{'.'.join(key)}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class SensorDriver(ABC):
    """A sensor that reports every measurement from its own thread.

    `DRIVER` is the YAML `driver:` name, `KINDS` the sensor kinds it can read
    (`type:`), `USES_GPIO` whether it needs a gpiozero pin factory.
    """

    DRIVER: ClassVar[str]
    KINDS: ClassVar[tuple[str, ...]]
    USES_GPIO: ClassVar[bool] = False
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
    """An actuator driven to one of its kind's states (drivers.kinds).

    It starts in `safe_state` (never a glitch to the other state while its
    outputs are set up) and `close()` leaves it there before releasing them.
    """

    DRIVER: ClassVar[str]
    KINDS: ClassVar[tuple[str, ...]]
    USES_GPIO: ClassVar[bool] = False
    OPTIONS: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, problem) pairs for rules that span several options."""
        return []

    def __init__(self, name: str, safe_state: str) -> None:
        self.name = name
        self.safe_state = safe_state

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
