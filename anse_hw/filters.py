"""Per-sensor reading filters: what stands between a noisy sensor and a reflex.

A real HC-SR04 gives spikes, zeros and multipath echoes; a real switch
bounces.  A sensor's `filters:` list is applied in order to every valid
reading, and the filtered value is what the world model, the stream and the
reflexes see.  Everything here is pure: no clock, no I/O, time comes only
from the readings' own timestamps, so a recording of raw readings replays to
the same filtered decisions.

A filter costs time, and on a guard that time is added to a stop.  Every
filter declares its worst-case added delay, `delay(interval)`: how much
later its output crosses a threshold than its input did, counted in
readings at the sensor's nominal interval (an invalid reading, S3, stretches
that by one interval; S2 bounds the total at `max_age`).  A chain's delay is
the sum of its filters': each one sees a clean step that the ones before it
have delayed.  The median's, max_jump's and debounce's figures are exactly
what a clean step costs; ema's is the bound `Ema` explains.  The tests check
on random sequences that no figure is ever exceeded.

The parts:
- a spec (`Median`, `MaxJump`, `Ema`, `Calibrate`, `Debounce`): frozen,
  comparable, part of the config;
- `FilterChain`: the specs of one sensor, in order;
- `chain.start()` -> `Filtering`: the running state, one per sensor, whose
  `step(value, taken)` returns the filtered value or None when the reading
  was swallowed (no output: the world model keeps its last value and the
  reading does not count as fresh).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from anse_hw.shape import Path, SpecError, mapping, number, shown, unknown_key

__all__ = [
    "MEDIAN_MAX",
    "Calibrate",
    "Debounce",
    "Ema",
    "Filter",
    "FilterChain",
    "FilterSpecError",
    "Filtering",
    "MaxJump",
    "Median",
    "parse_filters",
]

#: The largest median window: 15 readings already delay a 60 ms sensor by 420 ms.
MEDIAN_MAX = 15
#: `max_jump` passes the third outlier in a row as the new level (and drops two).
JUMP_ACCEPT = 3
#: Timestamps are floats: 0.13 - 0.10 is not quite 0.03.  A nanosecond of
#: slack lets "held for 30 ms" mean what it says.
EPSILON = 1e-9


class FilterSpecError(SpecError):
    """A bad `filters:` entry: `path` is its key path, `str()` the reason."""


_number = partial(number, error=FilterSpecError)
_mapping = partial(mapping, error=FilterSpecError)


class Stage(Protocol):
    """One filter's running state."""

    def step(self, value: float, taken: float) -> float | None:
        """The filtered value, or None when this reading is swallowed."""
        ...


def _readings(count: int | float, interval: float) -> float:
    """`count` readings at `interval`, in seconds."""
    return count * interval


@dataclass(frozen=True)
class Median:
    """The median of the last `n` readings: up to n//2 spikes in a row never
    get through.  `n` is odd, so the output is always one of the readings
    (an even median averages two, letting a spike move the output).

    Delay: after a clean step the new level is the majority of the window at
    its (n//2 + 1)-th reading, so it adds n//2 intervals (median 3 at 60 ms:
    60 ms; the 120 ms a window of 3 spans is how old its oldest reading is,
    not how late a step gets through).  Until n readings have arrived it
    swallows them: a half-full window would let a spike through at start-up,
    when S1 keeps the motors stopped anyway.
    """

    n: int

    def delay(self, interval: float) -> float:
        return _readings(self.n // 2, interval)

    def text(self) -> str:
        return f"median {self.n}"

    def start(self) -> Stage:
        return _MedianStage(self.n)


class _MedianStage:
    def __init__(self, n: int) -> None:
        self.window: deque[float] = deque(maxlen=n)

    def step(self, value: float, taken: float) -> float | None:
        self.window.append(value)
        if len(self.window) < self.window.maxlen:
            return None
        return sorted(self.window)[len(self.window) // 2]


@dataclass(frozen=True)
class MaxJump:
    """Drop a reading more than `limit` away from the last one passed; the
    third such reading in a row is passed, and becomes the new level.  The
    three need not agree with each other: requiring that would let steady
    noise hold a real step back forever, and a guard's delay must be bounded.

    Delay: a genuine step larger than `limit` is dropped twice, then passed:
    2 intervals.  The first reading ever is passed (there is nothing to jump
    from).
    """

    limit: float

    def delay(self, interval: float) -> float:
        return _readings(JUMP_ACCEPT - 1, interval)

    def text(self) -> str:
        return f"max_jump {self.limit:g}"

    def start(self) -> Stage:
        return _MaxJumpStage(self.limit)


class _MaxJumpStage:
    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.last: float | None = None
        self.dropped = 0

    def step(self, value: float, taken: float) -> float | None:
        far = self.last is not None and abs(value - self.last) > self.limit
        if far and self.dropped < JUMP_ACCEPT - 1:
            self.dropped += 1
            return None
        self.last, self.dropped = value, 0
        return value


@dataclass(frozen=True)
class Ema:
    """Exponential average, `weight` of the new reading: y += w·(x − y),
    starting at the first reading.

    Delay.  After a step the average never quite arrives, so "time to reach
    the new level" is infinite and useless; what a guard needs is when the
    average crosses its threshold.  For an obstacle approaching at any
    constant speed the average trails the readings by exactly (1−w)/w
    intervals once settled (less before), so it crosses any threshold at
    most ceil((1−w)/w) readings after they do: that is the declared delay
    (ema 0.5: 1 interval, ema 0.2: 4).  A sudden step that lands at least as
    far past the threshold as it started before it (it covers at least half
    the step) crosses within the same bound, since half a step takes
    ceil(ln ½ / ln(1−w)) − 1 readings, never more.  A step landing closer to
    the threshold than that takes longer, without bound as it lands right on
    the threshold: no figure covers it, and a guard whose threshold sits
    within its sensor's noise of the obstacle is mistuned with or without a
    filter.
    """

    weight: float

    def delay(self, interval: float) -> float:
        return _readings(math.ceil((1 - self.weight) / self.weight - EPSILON), interval)

    def text(self) -> str:
        return f"ema {self.weight:g}"

    def start(self) -> Stage:
        return _EmaStage(self.weight)


class _EmaStage:
    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.average: float | None = None

    def step(self, value: float, taken: float) -> float | None:
        if self.average is None:
            self.average = value
        else:
            self.average += self.weight * (value - self.average)
        return self.average


@dataclass(frozen=True)
class Calibrate:
    """value·scale + offset: a sensor that reads 1.5 cm long, or in the wrong
    unit.  Instantaneous: no delay."""

    scale: float = 1.0
    offset: float = 0.0

    def delay(self, interval: float) -> float:
        return 0.0

    def text(self) -> str:
        return f"calibrate scale {self.scale:g} offset {self.offset:g}"

    def start(self) -> Stage:
        return self

    def step(self, value: float, taken: float) -> float | None:
        return value * self.scale + self.offset


@dataclass(frozen=True)
class Debounce:
    """A binary sensor's change counts once it has held `seconds`, measured
    on the readings' own timestamps (no clock here, so replay agrees).
    While a change is pending the readings are swallowed: a contact that
    keeps chattering gives no fresh value and S2 stops the motor, which is
    the safe reading of a switch that cannot make up its mind.  The first
    reading ever is passed (there is nothing to bounce from).

    Delay: the change is passed at the first reading at least `seconds`
    after the first one that saw it: ceil(seconds / interval) intervals.
    """

    seconds: float

    def delay(self, interval: float) -> float:
        return _readings(math.ceil(self.seconds / interval - EPSILON), interval)

    def text(self) -> str:
        return f"debounce {self.seconds:g} s"

    def start(self) -> Stage:
        return _DebounceStage(self.seconds)


class _DebounceStage:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stable: float | None = None
        self.since: float | None = None  # when the pending change was first seen

    def step(self, value: float, taken: float) -> float | None:
        if self.stable is None or value == self.stable:
            self.stable, self.since = value, None
            return value
        if self.since is None:
            self.since = taken
        if taken - self.since >= self.seconds - EPSILON:
            self.stable, self.since = value, None
            return value
        return None


Filter = Median | MaxJump | Ema | Calibrate | Debounce


@dataclass(frozen=True)
class FilterChain:
    """One sensor's filters, in the order they apply."""

    filters: tuple[Filter, ...] = ()

    def delay(self, interval: float) -> float:
        """The worst-case delay the chain adds to a step (the module says why
        the sum)."""
        return sum(f.delay(interval) for f in self.filters)

    def start(self) -> Filtering:
        """Fresh running state: one per sensor, and anew after a gap in the
        readings if old readings should not shape new ones."""
        return Filtering(tuple(f.start() for f in self.filters))


class Filtering:
    """A chain running on one sensor's readings."""

    def __init__(self, stages: tuple[Stage, ...]) -> None:
        self.stages = stages

    def step(self, value: float, taken: float) -> float | None:
        """The filtered value, or None when a filter swallowed the reading."""
        result: float | None = value
        for stage in self.stages:
            result = stage.step(result, taken)
            if result is None:
                return None
        return result


# -- parsing ---------------------------------------------------------------


def _median(raw: object, path: Path) -> Filter:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MEDIAN_MAX:
        raise FilterSpecError(
            path, f"expected an odd whole number of readings, 1 to {MEDIAN_MAX}, got {shown(raw)}"
        )
    if raw % 2 == 0:
        raise FilterSpecError(
            path,
            f"expected an odd number of readings, got {raw}: an even median averages "
            f"two readings, so one spike moves it; use {raw - 1} or {raw + 1}",
        )
    return Median(raw)


def _max_jump(raw: object, path: Path) -> Filter:
    limit = _number(raw, path)
    if limit <= 0:
        raise FilterSpecError(path, f"expected a jump greater than 0, got {limit:g}")
    return MaxJump(limit)


def _ema(raw: object, path: Path) -> Filter:
    weight = _number(raw, path)
    if not 0 < weight <= 1:
        raise FilterSpecError(
            path, f"expected the new reading's weight, above 0 and at most 1, got {weight:g}"
        )
    return Ema(weight)


def _calibrate(raw: object, path: Path) -> Filter:
    given = _mapping(raw, path, "{scale: 1.0, offset: -1.5}")
    for key in given:
        if key not in ("scale", "offset"):
            raise FilterSpecError((*path, key), unknown_key(key, ("scale", "offset")))
    if not given:
        raise FilterSpecError(path, "expected scale, offset or both")
    scale = _number(given.get("scale", 1.0), (*path, "scale"))
    if scale <= 0:
        raise FilterSpecError(
            (*path, "scale"),
            f"expected a scale greater than 0, got {scale:g}: zero would make every "
            "reading the offset, a negative one turns near into far",
        )
    return Calibrate(scale, _number(given.get("offset", 0.0), (*path, "offset")))


def _debounce(raw: object, path: Path) -> Filter:
    seconds = _number(raw, path)
    if seconds < 0:
        raise FilterSpecError(path, f"expected seconds, 0 or more, got {seconds:g}")
    return Debounce(seconds)


#: Filter name -> (parser, whether it is for binary sensors).
PARSERS: dict[str, tuple[Callable[[object, Path], Filter], bool]] = {
    "median": (_median, False),
    "max_jump": (_max_jump, False),
    "ema": (_ema, False),
    "calibrate": (_calibrate, False),
    "debounce": (_debounce, True),
}


def _one(item: object, path: Path, binary: bool) -> Filter:
    entry = _mapping(item, path, "{median: 3}")
    if len(entry) != 1:
        got = ", ".join(entry) or "nothing"
        raise FilterSpecError(path, f"expected one filter per list item, got {got}")
    ((name, value),) = entry.items()
    if name not in PARSERS:
        raise FilterSpecError((*path, name), unknown_key(name, PARSERS, "filter"))
    parse, for_binary = PARSERS[name]
    if for_binary != binary:
        allowed = [n for n, (_, b) in PARSERS.items() if b == binary]
        kind = "a binary sensor" if binary else "a numeric sensor"
        raise FilterSpecError(
            (*path, name), f"{name} does not apply to {kind}; it takes {', '.join(allowed)}"
        )
    return parse(value, (*path, name))


def parse_filters(raw: object, where: Path, *, binary: bool = False) -> FilterChain:
    """The chain from a sensor's `filters:` list; `where` is the list's key
    path, `binary` whether the sensor is binary (debounce only) or numeric
    (everything else).  Raises FilterSpecError on the first bad entry."""
    if not isinstance(raw, list):
        raise FilterSpecError(
            where, f"expected a list of filters like [{{median: 3}}], got {shown(raw)}"
        )
    return FilterChain(tuple(_one(item, (*where, i), binary) for i, item in enumerate(raw)))
