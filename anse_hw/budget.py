"""The stop-delay budget: what a guard's filters and `for:` cost a stop.

A median of 9 on an ultrasonic stop delays it by a quarter of a second, and
nothing in the YAML says so.  For every guard, `--check` prints the
worst-case delay its filters and `for:` add, and refuses a guard over its
`max_delay`.  The figure:

- each sensor the condition names adds its filter chain's delay at its
  reading interval (`FilterChain.delay`: the filters say why theirs);
- the condition waits for its slowest sensor, not for the sum: `all` is
  True once its last part is, `any` once its first is, and a part's own
  filters delay it by its sensor's figure, so the tree is late by at most
  the largest one;
- `for:` adds its seconds, provided the engine re-evaluates at
  `Verdict.due` (evaluating only at readings adds up to one more interval).

Not counted: a rate's window.  "Falling faster than 40 cm/s over 0.3 s" is
what the guard says, not a delay a filter sneaks in, and its readings are
the filtered ones, so their delay is already counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from anse_hw.conditions import Condition
from anse_hw.filters import FilterChain
from anse_hw.shape import Path, SpecError, number

__all__ = ["MAX_DELAY", "Budget", "parse_max_delay", "stop_delay"]

#: A guard's `max_delay` when none is given, in seconds: a robot at 0.5 m/s
#: travels 12.5 cm in it, about the margin between a 10 cm stop and contact.
MAX_DELAY = 0.25
#: Float sums: 0.06 * 3 + 0.07 is not quite 0.25.  A nanosecond of slack.
EPSILON = 1e-9


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.6g} ms"


@dataclass(frozen=True)
class Budget:
    """A guard's worst-case added stop delay and how it adds up."""

    total: float  # seconds
    breakdown: str  # 'front: median 3 at 60 ms = 60 ms; for 0.1 s = 100 ms; total 160 ms'

    def refusal(self, max_delay: float = MAX_DELAY) -> str | None:
        """The one-line reason `--check` refuses the guard, or None if it fits."""
        if self.total <= max_delay + EPSILON:
            return None
        return (
            f"filters and for: delay a stop by up to {_ms(self.total)}, over "
            f"max_delay {_ms(max_delay)} ({self.breakdown})"
        )


def stop_delay(
    condition: Condition,
    chains: Mapping[str, FilterChain],
    intervals: Mapping[str, float],
) -> Budget:
    """The budget of a guard's `condition`, given each sensor's filter chain
    (a sensor not in `chains` is unfiltered) and reading interval in seconds
    (needed for every filtered sensor)."""
    parts: list[str] = []
    slowest = 0.0
    for sensor in sorted(condition.sensors()):
        chain = chains.get(sensor, FilterChain())
        if chain.filters:
            slowest = max(slowest, chain.delay(intervals[sensor]))
            parts.append(f"{sensor}: {_chain_text(chain, intervals[sensor])}")
        else:
            parts.append(f"{sensor}: unfiltered")
    if condition.hold:
        parts.append(f"for {condition.hold:g} s = {_ms(condition.hold)}")
    total = slowest + condition.hold
    how = ""
    if len(condition.sensors()) > 1:
        how = " (the slowest sensor + for)" if condition.hold else " (the slowest sensor)"
    parts.append(f"total {_ms(total)}{how}")
    return Budget(total, "; ".join(parts))


def _chain_text(chain: FilterChain, interval: float) -> str:
    """'median 3 at 60 ms = 60 ms', each filter's share shown when there are
    several: 'median 3 (60 ms) + max_jump 80 (120 ms) at 60 ms = 180 ms'."""
    if len(chain.filters) == 1:
        names = chain.filters[0].text()
    else:
        names = " + ".join(f"{f.text()} ({_ms(f.delay(interval))})" for f in chain.filters)
    return f"{names} at {_ms(interval)} = {_ms(chain.delay(interval))}"


def parse_max_delay(raw: object, where: Path) -> float:
    """A guard's `max_delay` in seconds, above 0."""
    seconds = number(raw, where)
    if seconds <= 0:
        raise SpecError(where, f"expected seconds above 0, got {seconds:g}")
    return seconds
