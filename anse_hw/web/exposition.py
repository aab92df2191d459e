"""The Prometheus exposition of anse_hw.metrics, by prometheus_client's own
conventions: what only grows is a counter (`_total`), a level a gauge;
`anse_build_info` and the process collector as every exporter has them;
the format (Prometheus text or OpenMetrics) chosen by the scraper's Accept.

Imported by the server on the first `GET /metrics`, not before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from anse_hw import __version__
from anse_hw.metrics import STOP_BUCKETS, Sources
from anse_hw.web.hub import COUNTED


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
        yield _sensor_values(health["sensors"])
        yield InfoMetricFamily(
            "anse_build", "The anse-hw version running", {"version": __version__}
        )
        for name, value in sources.hub().items():
            counted = name in COUNTED
            yield _figure(f"anse_{name}", name.replace("_", " "), value, counted)
        if sources.mqtt is not None:
            for name, value in sources.mqtt().items():
                base = name.removesuffix("_total")
                text = f"MQTT {base.replace('_', ' ')}"
                yield _figure(f"anse_mqtt_{base}", text, value, name != base)


def _sensor_values(sensors: dict) -> GaugeMetricFamily:
    """Each sensor's latest valid reading, so Grafana can plot it; a sensor
    without a fresh one has no sample (Prometheus then marks its series
    stale) rather than its last value shown as if current."""
    family = GaugeMetricFamily(
        "anse_sensor_value", "The latest valid reading", labels=["sensor", "type", "unit"]
    )
    for name, s in sorted(sensors.items()):
        if s["fresh"] and s["value"] is not None:
            family.add_metric([name, s["type"], s["unit"]], s["value"])
    return family


def _figure(name: str, text: str, value: float, counted: bool) -> Metric:
    """A count since the start is a counter (prometheus_client adds _total),
    anything else a gauge."""
    if counted:
        return CounterMetricFamily(name, text, value)
    return GaugeMetricFamily(name, text, value)


def _counter(name: str, text: str, label: str, counts: Counter) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def render(sources: Sources, accept: str) -> tuple[bytes, str]:
    """The scrape's body and its content type, in the format the scraper's
    Accept header asks for (OpenMetrics, else Prometheus text)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(sources))
    for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(standard)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
