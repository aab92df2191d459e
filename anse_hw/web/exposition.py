"""The Prometheus text format of anse_hw.metrics (prometheus_client).

Imported by the server on the first `GET /metrics`, not before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from anse_hw.metrics import STOP_BUCKETS, Sources


class Collector:
    """Everything a Prometheus scrape sees, gathered when it asks."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        sources = self.sources
        s = sources.stats()
        yield _counter("anse_readings", "Valid readings per sensor", "sensor", s.readings)
        health = sources.health()
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
        for name, value in sources.hub().items():
            yield GaugeMetricFamily(f"anse_{name}", name.replace("_", " "), value)
        if sources.mqtt is not None:
            for name, value in sources.mqtt().items():
                yield GaugeMetricFamily(
                    f"anse_mqtt_{name}", f"MQTT {name.replace('_', ' ')}", value
                )


def _counter(name: str, text: str, label: str, counts: Counter) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def render(sources: Sources) -> tuple[bytes, str]:
    """The scrape's body and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(sources))
    return generate_latest(registry), CONTENT_TYPE_LATEST
