"""A differential base in the engine, reading by reading on a clock the test
turns: cruise, limit, ramp, and the stop that wins over all of them."""

from __future__ import annotations

import pytest

from anse_hw import config as configuration
from anse_hw.engine import Engine
from anse_hw.errors import ConfigError, Refused
from anse_hw.readings import Sample

BASE = """
sensors:
  - {name: front, driver: sim, interval: 10, max_age: 30}
actuators:
  - {name: base, type: drive, driver: sim, max_speed: 0.8, accel: 2.0}
reflexes:
  - {name: slow_near, sensor: front, actuator: base, command: {limit: {full_at: 60, zero_at: 15}}}
  - {name: cruise, sensor: front, above: 30, actuator: base, command: {linear: 0.5, angular: 0}}
  - {name: guard, sensor: front, below: 15, actuator: base, command: stop}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drive_engine(text: str = BASE) -> tuple[Engine, list[dict], Clock]:
    from anse_hw.app.devices import build_actuators, build_sensors

    cfg = configuration.parse(text)
    published: list[dict] = []
    clock = Clock()
    engine = Engine(
        cfg,
        build_sensors(cfg, None),
        build_actuators(cfg, None),
        published.extend,
        lambda exc: None,
        clock=clock,
    )
    engine.prepare()
    return engine, published, clock


def settle(engine: Engine, clock: Clock, seconds: float = 2.0) -> None:
    """Let the monitor step the ramps for `seconds`, 50 times a second."""
    for _ in range(int(seconds * 50)):
        clock.now += 0.02
        engine.check_silence()


def wheels(engine: Engine) -> tuple[float, float]:
    return engine.actuators["base"].wheels


def last_actuator(published: list[dict]) -> dict:
    return [e for e in published if e["type"] == "actuator"][-1]["data"]


def test_a_cruise_reflex_drives_the_base_and_the_wire_says_linear_and_angular():
    engine, published, clock = drive_engine()
    engine.on_sample("front", Sample(80.0))
    settle(engine, clock)
    assert wheels(engine) == pytest.approx((0.4, 0.4)), "0.5 of max_speed 0.8"
    event = last_actuator(published)
    assert event == {
        "actuator_name": "base",
        "actuator_type": "drive",
        "state": "MOVING",
        "linear": 0.5,
        "angular": 0.0,
    }


def test_the_ramp_bounds_acceleration_and_a_stop_is_immediate():
    engine, published, clock = drive_engine()
    engine.on_sample("front", Sample(80.0))
    assert wheels(engine) == (0.0, 0.0), "no jump to speed"
    clock.now += 0.1
    engine.check_silence()
    assert wheels(engine)[0] == pytest.approx(0.2), "0.1 s at 2 duty/s"
    settle(engine, clock)
    assert wheels(engine) == pytest.approx((0.4, 0.4))
    engine.on_sample("front", Sample(10.0))  # the guard, on this very reading
    assert wheels(engine) == (0.0, 0.0)
    assert last_actuator(published)["state"] == "STOPPED"
    assert engine.last_stop["cause"] == "guard"


def test_a_limit_caps_forward_speed_by_distance():
    engine, published, clock = drive_engine()
    engine.on_sample("front", Sample(80.0))
    settle(engine, clock)
    engine.on_sample("front", Sample(37.5))  # halfway between 15 and 60: cap 0.5
    assert wheels(engine) == pytest.approx((0.4, 0.4)), "cruise 0.5 is within the cap"
    engine.on_sample("front", Sample(24.0))  # cap 0.2, applied at once
    assert wheels(engine) == pytest.approx((0.16, 0.16))
    assert last_actuator(published)["linear"] == pytest.approx(0.2)
    engine.on_sample("front", Sample(50.0))  # cap 0.78: back up to the cruise, ramped
    assert wheels(engine) == pytest.approx((0.16, 0.16))
    settle(engine, clock)
    assert wheels(engine) == pytest.approx((0.4, 0.4))


def test_a_limit_leaves_reverse_free_and_allows_no_forward_before_it_reads():
    engine, _published, clock = drive_engine()
    with pytest.raises(Refused):  # no reading yet: the guard is not clear
        engine.operator("command", "test", "base", {"linear": -0.5, "angular": 0})
    engine.on_sample("front", Sample(16.0))  # not the guard's; cap 0.02
    engine.operator("command", "test", "base", {"linear": -0.5, "angular": 0})
    settle(engine, clock, 0.3)  # within the hold time
    assert wheels(engine) == pytest.approx((-0.4, -0.4)), "reverse uncapped, however near"
    engine.operator("command", "test", "base", {"linear": 1.0, "angular": 0})
    settle(engine, clock, 0.3)
    assert wheels(engine)[0] == pytest.approx(0.8 * (1 / 45)), "forward: capped at 1/45"


def test_a_guard_stops_the_base_while_an_operator_drives_forward_and_the_hold_is_void():
    engine, _published, clock = drive_engine()
    engine.on_sample("front", Sample(25.0))  # between guard and cruise: nothing moves it
    engine.operator("command", "test", "base", {"linear": 1.0, "angular": 0.0})
    settle(engine, clock, 0.4)  # within the hold time
    engine.operator("command", "test", "base", {"linear": 1.0, "angular": 0.0})  # heartbeat
    assert wheels(engine)[0] > 0
    engine.on_sample("front", Sample(12.0))
    assert wheels(engine) == (0.0, 0.0)
    assert "base" not in engine.holds, "the operator must ask again"
    with pytest.raises(Refused) as refused:
        engine.operator("command", "test", "base", {"linear": 1.0, "angular": 0.0})
    assert refused.value.status == 409
    engine.on_sample("front", Sample(25.0))  # clear of the guard, not yet the cruise
    settle(engine, clock, 0.4)
    assert wheels(engine) == (0.0, 0.0), "the guard's stop outlasts its condition"


def test_an_estop_stops_a_cruising_base_and_nothing_restarts_it_until_reset():
    engine, _published, clock = drive_engine()
    engine.on_sample("front", Sample(80.0))
    settle(engine, clock)
    engine.operator("estop", "test")
    assert wheels(engine) == (0.0, 0.0)
    engine.on_sample("front", Sample(81.0))
    settle(engine, clock)
    assert wheels(engine) == (0.0, 0.0)
    engine.operator("reset", "test")
    engine.on_sample("front", Sample(82.0))
    settle(engine, clock)
    assert wheels(engine) == pytest.approx((0.4, 0.4))


def test_a_lost_heartbeat_stops_the_base_within_the_hold_time():
    engine, published, clock = drive_engine()
    engine.on_sample("front", Sample(25.0))
    engine.operator("command", "test", "base", {"linear": -0.5, "angular": 0.5})
    settle(engine, clock, 0.3)
    assert wheels(engine) != (0.0, 0.0)
    settle(engine, clock, 0.3)  # 0.6 s since the command, hold time 0.5 s
    assert wheels(engine) == (0.0, 0.0)
    assert last_actuator(published)["state"] == "STOPPED"


def test_a_silent_limit_sensor_stops_forward_at_once():
    text = BASE.replace("interval: 10, max_age: 30", "interval: 0.1, max_age: 0.5")
    engine, _published, clock = drive_engine(text)
    engine.on_sample("front", Sample(80.0))
    settle(engine, clock, 0.3)
    assert wheels(engine)[0] > 0
    settle(engine, clock, 0.5)
    assert wheels(engine) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("reflex", "message"),
    [
        (
            "{name: r, sensor: front, above: 30, actuator: base, command: {linear: 2, angular: 0}}",
            "linear must be from -1 to 1",
        ),
        (
            "{name: r, sensor: front, actuator: base, "
            "command: {limit: {full_at: 10, zero_at: 20}}}",
            "full_at (10) must be beyond zero_at (20)",
        ),
        (
            "{name: r, sensor: front, below: 5, actuator: base, "
            "command: {limit: {full_at: 60, zero_at: 20}}}",
            "a limit has no condition",
        ),
        (
            "{name: r, sensor: front, above: 30, actuator: fan, command: {linear: 1, angular: 0}}",
            "is for a drive; 'fan' is type output",
        ),
        ("{name: r, sensor: front, above: 30, actuator: base, command: move}", "stop | {linear"),
    ],
)
def test_a_drive_command_that_cannot_be_obeyed_is_a_config_error(reflex, message):
    text = f"""
sensors: [{{name: front, driver: sim}}]
actuators:
  - {{name: base, type: drive, driver: sim}}
  - {{name: fan, type: output, driver: sim}}
reflexes:
  - {reflex}
"""
    with pytest.raises(ConfigError) as error:
        configuration.parse(text)
    assert message in str(error.value)


def test_max_speed_is_only_for_a_drive():
    text = """
sensors: [{name: front, driver: sim}]
actuators: [{name: m, driver: sim, max_speed: 0.5}]
"""
    with pytest.raises(ConfigError, match="max_speed: is for a drive"):
        configuration.parse(text)


def test_an_emergency_stop_mid_ramp_stays_stopped_through_the_next_ramp_steps():
    """The failing daemon's last resort drives the pins directly: the
    monitor's next ramp step must not turn the wheels again."""
    engine, _published, clock = drive_engine()
    engine.on_sample("front", Sample(80.0))
    clock.now += 0.1
    engine.check_silence()
    assert wheels(engine)[0] > 0, "ramping up"
    engine.emergency_stop()
    settle(engine, clock, 0.2)
    assert wheels(engine) == (0.0, 0.0)
