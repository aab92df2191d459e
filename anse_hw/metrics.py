"""What `GET /metrics` reports, without the format it is reported in.

The reflex path only bumps plain integers in `EngineStats` (under the lock it
already holds).  `Sources` names where a scrape reads from; the Prometheus
text format lives in anse_hw.web.exposition, imported on the first scrape, so a
daemon nobody scrapes never loads prometheus_client (about 2 MB).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Seconds, from a reading's arrival to its actuator driven to the safe state.
STOP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass
class EngineStats:
    """Counted by the engine under its own lock; read at scrape time."""

    readings: Counter = field(default_factory=Counter)  # valid readings per sensor
    firings: Counter = field(default_factory=Counter)  # per reflex name
    changes: Counter = field(default_factory=Counter)  # per (actuator, state)
    stop_buckets: list[int] = field(default_factory=lambda: [0] * (len(STOP_BUCKETS) + 1))
    stop_sum: float = 0.0

    def stop_latency(self, seconds: float) -> None:
        self.stop_buckets[bisect.bisect_left(STOP_BUCKETS, seconds)] += 1
        self.stop_sum += seconds

    def copy(self) -> EngineStats:
        return EngineStats(
            Counter(self.readings),
            Counter(self.firings),
            Counter(self.changes),
            list(self.stop_buckets),
            self.stop_sum,
        )


@dataclass
class Sources:
    """Where a scrape reads: the engine's counters, its health, the hub's
    client figures and (if configured) the MQTT bridge's state."""

    stats: Callable[[], EngineStats]
    health: Callable[[], dict[str, Any]]
    hub: Callable[[], dict[str, float]]
    mqtt: Callable[[], dict[str, float]] | None = None
