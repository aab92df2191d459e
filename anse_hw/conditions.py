"""Compound reflex conditions: `when:` trees of `all:`/`any:` over sensor tests.

"Approaching fast", "too hot for two seconds" and "bumper pressed while
moving" are conditions on several readings over time; a reflex that can only
compare one reading with one number cannot say them.  A `Condition` is a
tree of `Group`s (`all`, `any`, nestable) over `Leaf` tests (`below`,
`above`, `active`, `rate_below`, `rate_above`) plus a `for:` time the whole
condition must hold before it fires.  The old one-line reflex
(`sensor` + `below`/`above`/`active`) is the one-leaf tree `one_line()` builds.

Evaluation is pure: an `Evaluator` is fed the filtered readings with their
timestamps (`update`) and asked about a moment (`holds(now)`); it has no
clock and no I/O, so replaying the readings replays the decisions.

Unknown.  A leaf whose sensor has no reading, or whose latest reading is
older than the sensor's `max_age`, or a rate leaf without two readings in
its window, is unknown (None).  Groups combine in three-valued (Kleene)
logic: `all` is False if any part is False, else unknown if any part is,
else True; `any` is the mirror image.  So a condition is unknown only when
the missing readings could decide it: `all: [front < 60, front falling]` is
False, not unknown, while the front is far, however the rate stands.  An
unknown condition never fires and resets `for:`; the engine treats a guard
whose verdict is unknown as calling for the safe state, and S2 watches every
sensor in `sensors()` on top of that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

from anse_hw.kinds import BINARY_THRESHOLD, SensorKind
from anse_hw.shape import Path, SpecError, mapping, number, shown, unknown_key

__all__ = [
    "RATE_WINDOW",
    "TESTS",
    "Condition",
    "ConditionSpecError",
    "Evaluator",
    "Group",
    "Leaf",
    "Node",
    "Verdict",
    "one_line",
    "parse_hold",
    "parse_when",
]

#: Seconds a rate is measured over when `rate_window` is not given.
RATE_WINDOW = 0.3
#: The longest `rate_window`: a rate over longer is a trend, not a reflex.
RATE_WINDOW_MAX = 10.0
#: Readings kept per sensor for rates, whatever the window: memory stays bounded.
HISTORY_MAX = 4096
#: How deep `all`/`any` may nest (a YAML alias can make a list contain itself).
DEPTH_MAX = 8
#: Float timestamps: 0.1 + 0.2 is not 0.3.  A nanosecond of slack.
EPSILON = 1e-9

Test = Literal["below", "above", "active", "rate_below", "rate_above"]
TESTS: tuple[Test, ...] = ("below", "above", "active", "rate_below", "rate_above")
RATES = ("rate_below", "rate_above")


class ConditionSpecError(SpecError):
    """A bad `when:` or `for:`: `path` is its key path, `str()` the reason."""


_number = partial(number, error=ConditionSpecError)
_mapping = partial(mapping, error=ConditionSpecError)


@dataclass(frozen=True)
class Leaf:
    """One test on one sensor.  `value` is the threshold (unit, or unit per
    second for rates) or, for `active`, the bool the sensor must be."""

    sensor: str
    test: Test
    value: float | bool
    window: float = RATE_WINDOW  # seconds; used by the rate tests only

    def truth(self, latest: float, rate: float | None) -> bool | None:
        """Whether it holds for the sensor's latest value and rate (None: unknown)."""
        if self.test == "active":
            return (latest >= BINARY_THRESHOLD) == self.value
        if self.test in RATES:
            if rate is None:
                return None
            return rate < self.value if self.test == "rate_below" else rate > self.value
        return latest < self.value if self.test == "below" else latest > self.value

    def text(self, units: Mapping[str, str], names: Mapping[str, str] | None = None) -> str:
        """'front < 60cm', 'front falling > 40cm/s', 'bumper active'."""
        name = (names or {}).get(self.sensor, self.sensor)
        unit = units.get(self.sensor, "")
        if self.test == "active":
            return f"{name} {'active' if self.value else 'inactive'}"
        if self.test in ("below", "above"):
            return f"{name} {'<' if self.test == 'below' else '>'} {self.value:g}{unit}"
        over = "" if self.window == RATE_WINDOW else f" over {self.window:g}s"
        return f"{name} {_rate_words(self.test, self.value)}{unit}/s{over}"


def _rate_words(test: Test, value: float) -> str:
    """'falling > 40' for rate_below -40, 'rising > 5' for rate_above 5; a
    threshold on the other side of zero reads as a plain 'rate < 5'."""
    if test == "rate_below":
        return f"falling > {-value:g}" if value < 0 else f"rate < {value:g}"
    return f"rising > {value:g}" if value > 0 else f"rate > {value:g}"


@dataclass(frozen=True)
class Group:
    """`all` or `any` of its parts."""

    mode: Literal["all", "any"]
    parts: tuple[Node, ...]

    def text(self, units: Mapping[str, str], names: Mapping[str, str] | None = None) -> str:
        """Parts joined by 'and'/'or'; a nested group is bracketed."""
        words = (p.text(units, names) for p in self.parts)
        shown_parts = (
            f"({w})" if isinstance(p, Group) and len(p.parts) > 1 else w
            for p, w in zip(self.parts, words, strict=True)
        )
        return f" {'and' if self.mode == 'all' else 'or'} ".join(shown_parts)


Node = Leaf | Group


@dataclass(frozen=True)
class Condition:
    """A reflex's whole condition: the tree and how long it must hold."""

    root: Node
    hold: float = 0.0  # the `for:` seconds

    @property
    def leaves(self) -> tuple[Leaf, ...]:
        """Every leaf, depth first: the order of `Verdict.leaves`."""
        return tuple(_leaves(self.root))

    def sensors(self) -> frozenset[str]:
        """Every sensor named anywhere in the tree (S2 watches all of a guard's)."""
        return frozenset(leaf.sensor for leaf in self.leaves)

    def text(self, units: Mapping[str, str], names: Mapping[str, str] | None = None) -> str:
        """The wire's text, as the seed writes it: 'front < 60cm and front
        falling > 40cm/s for 0.1s'.  `units` maps sensor to unit ('cm');
        `names` optionally replaces a sensor's name (the one-line form calls a
        distance sensor 'distance', as the seed did)."""
        hold = f" for {self.hold:g}s" if self.hold else ""
        return self.root.text(units, names) + hold


def _leaves(node: Node) -> Iterator[Leaf]:
    if isinstance(node, Leaf):
        yield node
    else:
        for part in node.parts:
            yield from _leaves(part)


def one_line(
    sensor: str,
    *,
    below: float | None = None,
    above: float | None = None,
    active: bool | None = None,
) -> Condition:
    """The old one-line reflex (`sensor` + one of `below`/`above`/`active`) as
    the same tree a `when:` would give."""
    given = [
        (t, v) for t, v in (("below", below), ("above", above), ("active", active)) if v is not None
    ]
    if len(given) != 1:
        raise ValueError("one_line takes exactly one of below, above, active")
    ((test, value),) = given
    return Condition(Leaf(sensor, test, value))


# -- evaluation ------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a condition says at one moment, for the engine and the dashboard."""

    state: bool | None  # the tree now: True, False or None (unknown)
    fires: bool  # True, and has been for `for:`
    leaves: tuple[bool | None, ...]  # each leaf, in Condition.leaves order
    held: float  # seconds the tree has been True (0 when it is not)
    due: float | None  # when it fires if it stays True (None: it is not True)
    hold: float  # the `for:` seconds, for the progress bar

    @property
    def progress(self) -> float:
        """`for:` progress, 0 to 1."""
        if self.hold <= 0:
            return 1.0 if self.state else 0.0
        return min(self.held / self.hold, 1.0)


class Evaluator:
    """One condition, fed timestamped filtered readings.

    `max_age` gives every sensor in the condition its staleness limit.  The
    engine calls `holds(now)` after each update and, if it wants `for:` to
    cost exactly its figure in the stop budget, again at `Verdict.due`
    (between readings); evaluating only at readings adds up to one interval.
    """

    def __init__(self, condition: Condition, max_age: Mapping[str, float]) -> None:
        missing = condition.sensors() - set(max_age)
        if missing:
            raise ValueError(f"no max_age for {', '.join(sorted(missing))}")
        self.condition = condition
        self.leaves = condition.leaves
        self.max_age = dict(max_age)
        self.windows = {s: 0.0 for s in condition.sensors()}
        for leaf in condition.leaves:
            if leaf.test in RATES:
                self.windows[leaf.sensor] = max(self.windows[leaf.sensor], leaf.window)
        self.history: dict[str, deque[tuple[float, float]]] = {
            s: deque(maxlen=HISTORY_MAX) for s in self.windows
        }
        self.since: float | None = None  # when the tree last became True

    def update(self, sensor: str, value: float, taken: float) -> None:
        """A filtered reading.  Sensors the condition does not name are
        ignored; a reading older than the latest is dropped (it would bend
        the rate backwards)."""
        history = self.history.get(sensor)
        if history is None or (history and taken < history[-1][0]):
            return
        history.append((taken, value))
        keep = taken - self.windows[sensor] - EPSILON
        while history[0][0] < keep:
            history.popleft()

    def forget(self, sensor: str) -> None:
        """Drop a sensor's readings (a fault, a reopened port): its leaves are
        unknown until it reads again, and no rate spans the gap."""
        if sensor in self.history:
            self.history[sensor].clear()

    def holds(self, now: float) -> Verdict:
        """The verdict at `now` (the engine passes the reading's timestamp, so
        replay agrees), advancing `for:`."""
        truths = tuple(self._leaf(leaf, now) for leaf in self.leaves)
        state = _combine(self.condition.root, iter(truths))
        hold = self.condition.hold
        if state is not True:
            self.since = None
        elif self.since is None:
            self.since = now
        held = 0.0 if self.since is None else now - self.since
        fires = state is True and held >= hold - EPSILON
        due = None if self.since is None else self.since + hold
        return Verdict(state, fires, truths, held, due, hold)

    def _leaf(self, leaf: Leaf, now: float) -> bool | None:
        history = self.history[leaf.sensor]
        if not history or now - history[-1][0] > self.max_age[leaf.sensor]:
            return None
        rate = _rate(history, leaf.window) if leaf.test in RATES else None
        return leaf.truth(history[-1][1], rate)


def _rate(history: deque[tuple[float, float]], window: float) -> float | None:
    """Unit per second from the oldest reading within `window` of the newest
    to the newest; None with fewer than two.  Endpoints, not a fit: exact,
    and the readings are already filtered."""
    newest_t, newest_v = history[-1]
    start = newest_t - window - EPSILON
    oldest_t, oldest_v = next((t, v) for t, v in history if t >= start)  # the newest at worst
    if oldest_t >= newest_t:
        return None
    return (newest_v - oldest_v) / (newest_t - oldest_t)


def _combine(node: Node, truths: Iterator[bool | None]) -> bool | None:
    """The tree's value from its leaves' (in `_leaves` order), Kleene-style."""
    if isinstance(node, Leaf):
        return next(truths)
    values = [_combine(part, truths) for part in node.parts]
    decisive = node.mode == "any"  # True decides `any`, False decides `all`
    if decisive in values:
        return decisive
    return None if None in values else not decisive


# -- parsing ---------------------------------------------------------------

LEAF_EXAMPLE = "{sensor: front, below: 60}"


def parse_when(raw: object, where: Path, kinds: Mapping[str, SensorKind]) -> Node:
    """The tree from a reflex's `when:`.  `kinds` maps every configured
    sensor to its kind: a name not in it is refused (with a did-you-mean),
    each test must suit the kind, and a `below`/`above` threshold must lie
    inside what the kind can read — the same rules as the one-line form."""
    return _node(raw, where, kinds, 0)


def parse_hold(raw: object, where: Path) -> float:
    """A reflex's `for:` seconds, 0 or more."""
    seconds = _number(raw, where)
    if seconds < 0:
        raise ConditionSpecError(where, f"expected seconds, 0 or more, got {seconds:g}")
    return seconds


def _node(raw: object, path: Path, kinds: Mapping[str, SensorKind], depth: int) -> Node:
    given = _mapping(raw, path, f"{{all: [...]}} or {LEAF_EXAMPLE}")
    if "all" in given or "any" in given:
        return _group(given, path, kinds, depth)
    return _leaf(given, path, kinds)


def _group(given: dict, path: Path, kinds: Mapping[str, SensorKind], depth: int) -> Group:
    if "all" in given and "any" in given:
        raise ConditionSpecError(path, "expected all or any, not both: nest one inside the other")
    mode = "all" if "all" in given else "any"
    if len(given) != 1:
        others = ", ".join(k for k in given if k != mode)
        raise ConditionSpecError(path, f"expected {mode} alone, got {others} beside it")
    parts = given[mode]
    if depth >= DEPTH_MAX:
        raise ConditionSpecError((*path, mode), f"nested deeper than {DEPTH_MAX} levels")
    if not isinstance(parts, list) or not parts:
        raise ConditionSpecError(
            (*path, mode), f"expected a non-empty list of conditions, got {shown(parts)}"
        )
    return Group(
        mode, tuple(_node(p, (*path, mode, i), kinds, depth + 1) for i, p in enumerate(parts))
    )


def _leaf(given: dict, path: Path, kinds: Mapping[str, SensorKind]) -> Leaf:
    for key in given:
        if key not in ("sensor", *TESTS, "rate_window"):
            raise ConditionSpecError(
                (*path, key), unknown_key(key, ("sensor", *TESTS, "rate_window", "all", "any"))
            )
    sensor = _sensor(given.get("sensor"), path, kinds)
    tests = [t for t in TESTS if t in given]
    if len(tests) != 1:
        got = " and ".join(tests) or "none"
        raise ConditionSpecError(path, f"expected exactly one of {', '.join(TESTS)}; got {got}")
    test = tests[0]
    kind = kinds[sensor]
    _suits(test, sensor, kind.binary, (*path, test))
    value = _threshold(test, given[test], (*path, test))
    problem = kind.threshold_problem(test, value) if test in ("below", "above") else None
    if problem:
        raise ConditionSpecError((*path, test), problem)
    window = _window(given, test, path)
    return Leaf(sensor, test, value, window)


def _sensor(raw: object, path: Path, kinds: Mapping[str, SensorKind]) -> str:
    if raw is None:
        raise ConditionSpecError(path, f"expected a sensor, like {LEAF_EXAMPLE}")
    if not isinstance(raw, str) or raw not in kinds:
        raise ConditionSpecError((*path, "sensor"), unknown_key(str(raw), kinds, "sensor"))
    return raw


def _suits(test: Test, sensor: str, is_binary: bool, path: Path) -> None:
    """Binary sensors take `active`; numeric ones every other test."""
    if is_binary != (test == "active"):
        takes = (
            "active: true or active: false"
            if is_binary
            else ("below, above, rate_below or rate_above")
        )
        kind = "binary" if is_binary else "numeric"
        raise ConditionSpecError(path, f"{sensor} is a {kind} sensor: it takes {takes}")


def _threshold(test: Test, raw: object, path: Path) -> float | bool:
    if test != "active":
        return _number(raw, path)
    if not isinstance(raw, bool):
        raise ConditionSpecError(path, f"expected true or false, got {shown(raw)}")
    return raw


def _window(given: dict, test: Test, path: Path) -> float:
    if "rate_window" not in given:
        return RATE_WINDOW
    path = (*path, "rate_window")
    if test not in RATES:
        raise ConditionSpecError(path, "rate_window goes with rate_below or rate_above")
    seconds = _number(given["rate_window"], path)
    if not 0 < seconds <= RATE_WINDOW_MAX:
        raise ConditionSpecError(
            path, f"expected seconds above 0 and at most {RATE_WINDOW_MAX:g}, got {seconds:g}"
        )
    return seconds
