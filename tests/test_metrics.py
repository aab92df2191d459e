"""GET /metrics as Prometheus and Grafana read it: parsed by prometheus_client's
own parsers, every count a counter (`_total`) that never goes down, a gauge
per sensor value, the build and the process, and the format the scraper
asks for in Accept."""

from __future__ import annotations

import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from anse_hw import __version__
from tests.conftest import KINDS, fast_sim_config, stalled_client, wait_for

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def scrape(port: int, accept: str | None = None) -> tuple[str, str]:
    """The body and content type of /metrics."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode(), response.headers["Content-Type"]


def families(port: int) -> dict:
    return {f.name: f for f in text_string_to_metric_families(scrape(port)[0])}


def value(port: int, sample_name: str) -> float:
    return next(
        s.value for f in families(port).values() for s in f.samples if s.name == sample_name
    )


def test_every_count_is_a_counter_and_every_level_a_gauge(broker, start_daemon):
    daemon = start_daemon(KINDS.format(port=0) + broker.config("robot1"))
    wait_for(lambda: "MQTT: connected" in daemon.log(), what="the bridge")
    found = wait_for(
        lambda: (
            (f := families(daemon.port)).get("anse_actuator_changes")
            and f["anse_actuator_changes"].samples
            and f
        ),
        what="an actuator change",
    )
    types = {name: family.type for name, family in found.items()}
    for counter in (
        "anse_readings",
        "anse_invalid_readings",
        "anse_reflex_firings",
        "anse_actuator_changes",
        "anse_frames_conflated",
        "anse_mqtt_dropped_events",
        "anse_mqtt_ignored_retained_commands",
        "anse_mqtt_ignored_empty_commands",
        "anse_mqtt_dropped_oversized_messages",
        "process_cpu_seconds",
    ):
        assert types[counter] == "counter", counter
    for gauge in (
        "anse_sensor_value",
        "anse_clients",
        "anse_stale_sensors",
        "anse_estop_latched",
        "anse_mqtt_connected",
        "anse_mqtt_queue_depth",
        "process_resident_memory_bytes",
    ):
        assert types[gauge] == "gauge", gauge
    for family in found.values():
        for sample in family.samples:
            counted = sample.name.endswith(("_total", "_created"))
            assert counted == (family.type == "counter"), sample.name
    # Grafana can plot each reading, labelled with what it is.
    values = {
        (s.labels["sensor"], s.labels["type"], s.labels["unit"]): s.value
        for s in found["anse_sensor_value"].samples
    }
    assert set(values) >= {
        ("front", "distance", "cm"),
        ("driver_temp", "temperature", "°C"),
        ("air", "humidity", "%"),
        ("bumper", "binary", ""),
    }, values
    assert 36 <= values[("driver_temp", "temperature", "°C")] <= 52
    # The text format has no info type: prometheus_client writes it as a gauge of 1.
    (build,) = found["anse_build_info"].samples
    assert build.value == 1 and build.labels["version"] == __version__


def test_conflated_frames_never_go_down_when_a_client_leaves(start_daemon):
    daemon = start_daemon(fast_sim_config(0, interval=0.005))
    stalled = stalled_client(daemon.port)
    try:
        conflated = wait_for(
            lambda: value(daemon.port, "anse_frames_conflated_total"),
            what="the stalled client's telemetry to be conflated",
        )
    finally:
        stalled.close()
    wait_for(lambda: value(daemon.port, "anse_clients") == 0, what="the client to be gone")
    assert value(daemon.port, "anse_frames_conflated_total") >= conflated


def test_the_format_follows_accept(start_daemon):
    daemon = start_daemon(fast_sim_config(0))
    wait_for(lambda: "anse_sensor_value{" in scrape(daemon.port)[0], what="a reading")
    body, content_type = scrape(daemon.port, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith("# EOF\n")
    parsed = {f.name: f for f in openmetrics_families(body)}
    assert parsed["anse_readings"].type == "counter"
    assert parsed["anse_sensor_value"].samples[0].labels["sensor"] == "distance_sensor"
    assert parsed["anse_build"].type == "info"
    body, content_type = scrape(daemon.port)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in body
