"""The reflex arc with two sensors guarding one motor, driven reading by reading."""

from __future__ import annotations

from anse_hw.engine import Engine
from anse_hw.readings import Sample
from tests.conftest import engine_for

TWO_SENSORS = """
sensors:
  - {name: front, driver: sim, interval: 10, max_age: 30}
  - {name: side, driver: sim, interval: 10, max_age: 30}
actuators:
  - {name: movement, driver: sim}
reflexes:
  - {name: front_stop, sensor: front, below: 10, actuator: movement, command: stop}
  - {name: side_stop, sensor: side, below: 10, actuator: movement, command: stop}
  - {name: front_clear, sensor: front, above: 15, actuator: movement, command: move}
"""


def make_engine() -> tuple[Engine, list[dict]]:
    return engine_for(TWO_SENSORS)


def states(published: list[dict]) -> list[str]:
    return [e["data"]["state"] for e in published if e["type"] == "actuator"]


def test_each_sensor_streams_its_own_events_and_the_nearest_is_the_distance():
    engine, published = make_engine()
    engine.on_sample("front", Sample(40.0))
    engine.on_sample("side", Sample(25.0))
    sensors = [e["data"]["sensor_name"] for e in published if e["type"] == "sensor"]
    assert sensors == ["front", "side"]
    world = [e for e in published if e["type"] == "worldmodel"][-1]["data"]
    assert world["distance_cm"] == 25.0
    assert world["sensors"]["front"]["value"] == 40.0


def test_one_clear_sensor_never_overrides_another_that_says_stop():
    engine, published = make_engine()
    engine.on_sample("front", Sample(40.0))
    assert states(published) == [], "side has not reported yet: not clear to move"
    engine.on_sample("side", Sample(30.0))
    engine.on_sample("front", Sample(41.0))
    assert states(published) == ["MOVING"]
    engine.on_sample("side", Sample(4.0))
    assert states(published) == ["MOVING", "STOPPED"]
    engine.on_sample("front", Sample(80.0))  # front is clear, side still too close
    assert states(published) == ["MOVING", "STOPPED"]
    assert engine.world.safe() is False
    engine.on_sample("side", Sample(30.0))
    engine.on_sample("front", Sample(80.0))
    assert states(published) == ["MOVING", "STOPPED", "MOVING"]


BAND = TWO_SENSORS + (
    "  - {name: side_clear, sensor: side, above: 15, actuator: movement, command: move}\n"
)


def test_a_guard_in_its_hysteresis_band_keeps_the_motor_stopped_whoever_says_go():
    """Front stopped the motor and now reads 12 cm, between its stop (10) and
    resume (15) thresholds: side being clear must not restart the motor."""
    engine, published = engine_for(BAND)
    engine.on_sample("side", Sample(40.0))
    engine.on_sample("front", Sample(40.0))
    assert states(published) == ["MOVING"]
    engine.on_sample("front", Sample(5.0))
    engine.on_sample("front", Sample(12.0))
    engine.on_sample("side", Sample(40.0))
    assert states(published) == ["MOVING", "STOPPED"], "front is in its band: not clear"
    engine.on_sample("front", Sample(16.0))
    assert states(published) == ["MOVING", "STOPPED", "MOVING"]


def test_with_nobody_listening_the_motor_still_stops_and_nothing_is_published():
    """No client, recorder or bridge: no event is built, encoded or handed to
    the event loop, but the reflexes act exactly as before, and a client that
    joins later sees seq numbers that continue (with a gap) and the truth."""
    engine, published = make_engine()
    listening = [False]
    engine.audience = lambda: listening[0]
    engine.on_sample("side", Sample(40.0))
    engine.on_sample("front", Sample(40.0))
    assert engine.world.actuators["movement"] == "MOVING"
    engine.on_sample("front", Sample(5.0))
    assert engine.world.actuators["movement"] == "STOPPED"
    assert published == []
    skipped = engine.snapshot_event()["seq"]
    assert skipped > 0  # the events happened; only their JSON was never made

    listening[0] = True
    engine.on_sample("front", Sample(40.0))
    assert [e["seq"] for e in published] == list(range(skipped + 1, skipped + 1 + len(published)))
    assert states(published) == ["MOVING"]
