"""`GET /metrics` in Prometheus text format (prometheus_client).

The reflex path only bumps plain integers in `EngineStats` (under the lock it
already holds); nothing from prometheus_client runs there.  At scrape time
`Collector` reads those counters, the hub's client figures and the MQTT
bridge's state, and yields them as metric families.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

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


class Collector:
    """Everything a Prometheus scrape sees, gathered when it asks."""

    def __init__(
        self,
        stats: Callable[[], EngineStats],
        health: Callable[[], dict[str, Any]],
        hub: Callable[[], dict[str, float]],
        mqtt: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self._stats, self._health, self._hub, self._mqtt = stats, health, hub, mqtt

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        yield _counter("anse_readings", "Valid readings per sensor", "sensor", s.readings)
        health = self._health()
        # Rejected readings (S3) are counted once, by the world model.
        invalid = Counter({n: v["invalid_readings"] for n, v in health["sensors"].items()})
        yield _counter("anse_invalid_readings", "Rejected readings per sensor", "sensor", invalid)
        yield _counter("anse_reflex_firings", "Reflex firings", "reflex", s.firings)
        changes = CounterMetricFamily(
            "anse_actuator_changes", "Actuator state changes", labels=["actuator", "state"]
        )
        for (actuator, state), count in sorted(s.changes.items()):
            changes.add_metric([actuator, state], count)
        yield changes
        cumulative, running = [], 0
        for bound, count in zip((*STOP_BUCKETS, float("inf")), s.stop_buckets, strict=True):
            running += count
            cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
        yield HistogramMetricFamily(
            "anse_stop_latency_seconds",
            "From a reading to its actuators driven to the safe state",
            buckets=cumulative,
            sum_value=s.stop_sum,
        )
        yield GaugeMetricFamily(
            "anse_stale_sensors", "Guarding sensors stale or lost", len(health["stale_watched"])
        )
        yield GaugeMetricFamily(
            "anse_estop_latched", "1 while the E-stop is latched", int(health["estop_latched"])
        )
        for name, value in self._hub().items():
            yield GaugeMetricFamily(f"anse_{name}", name.replace("_", " "), value)
        if self._mqtt is not None:
            for name, value in self._mqtt().items():
                yield GaugeMetricFamily(
                    f"anse_mqtt_{name}", f"MQTT {name.replace('_', ' ')}", value
                )


def _counter(name: str, text: str, label: str, counts: Counter) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def render(collector: Collector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
