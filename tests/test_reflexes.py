"""Reflexes for a real robot (issue 22), through the real engine on exact
timed sequences: filters between a sensor and its reflexes, compound
conditions, for:, one guard for several actuators.

The engine runs on a clock the test sets (its `clock` parameter), and the
readings carry their time, so every "not before" below is exact.
"""

from __future__ import annotations

import logging
from typing import Any

from anse_hw import config as configuration
from anse_hw.app.devices import build_actuators, build_sensors
from anse_hw.engine import Engine
from anse_hw.readings import Sample


class Clock:
    """The engine's monotonic clock, set by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Robot:
    """A real engine on sim drivers, fed reading by reading at set times."""

    def __init__(self, text: str) -> None:
        self.clock = Clock()
        self.config = configuration.parse(text)
        self.published: list[dict[str, Any]] = []
        self.engine = Engine(
            self.config,
            build_sensors(self.config, None),
            build_actuators(self.config, None),
            self.published.extend,
            lambda exc: None,
            clock=self.clock,
        )
        self.engine.prepare()

    def read(self, sensor: str, value: float, at: float) -> None:
        self.clock.now = 1000.0 + at
        self.engine.on_sample(sensor, Sample(value))

    def tick(self, at: float) -> None:
        """The monitor thread's tick at `at`."""
        self.clock.now = 1000.0 + at
        self.engine.check_silence()

    def state(self, actuator: str) -> str:
        return self.engine.world.actuators[actuator]

    def fired(self) -> list[str]:
        return [
            e["data"]["reflex_name"]
            for e in self.published
            if e["type"] == "reflex" and e["data"]["triggered"]
        ]

    def seen(self, sensor: str) -> list[float]:
        """The values the stream showed for `sensor`."""
        return [
            e["data"]["value"]
            for e in self.published
            if e["type"] == "sensor" and e["data"]["sensor_name"] == sensor
        ]


MEDIAN = """
sensors:
  - {name: front, driver: sim, interval: 0.06, max_age: 5, filters: [{median: 3}]}
actuators:
  - {name: movement, driver: sim}
reflexes:
  - {name: guard, sensor: front, below: 10, actuator: movement, command: stop}
  - {name: go, sensor: front, above: 15, actuator: movement, command: move}
"""


def test_median_3_lone_near_spikes_never_stop_three_near_readings_do_within_the_budget():
    robot = Robot(MEDIAN)
    t = 0.0
    for value in (50, 50, 50):
        robot.read("front", value, t)
        t += 0.06
    assert robot.state("movement") == "MOVING"
    for value in (5, 50, 50, 5, 50, 50, 4, 50, 50):  # lone spikes: one per window of 3
        robot.read("front", value, t)
        t += 0.06
        assert robot.state("movement") == "MOVING", f"a lone spike stopped it at {value}"
    assert 5 not in robot.seen("front") and 4 not in robot.seen("front")
    first_near = t
    stopped_at = None
    for value in (5, 5, 5):
        robot.read("front", value, t)
        if stopped_at is None and robot.state("movement") == "STOPPED":
            stopped_at = t
        t += 0.06
    assert stopped_at is not None, "three near readings in a row must stop it"
    budget = 0.06  # what --check prints for median 3 at 60 ms (test_reflexes_cli)
    assert stopped_at - first_near <= budget + 1e-9


def test_median_3_lone_far_spikes_never_restart_a_stopped_motor():
    robot = Robot(MEDIAN)
    t = 0.0
    for value in (5, 5, 5, 60, 5, 5, 70, 5, 5, 80, 5, 5):
        robot.read("front", value, t)
        t += 0.06
        assert robot.state("movement") == "STOPPED", f"a far spike restarted it at {value}"
    robot.read("front", 60, t)
    robot.read("front", 60, t + 0.06)
    assert robot.state("movement") == "MOVING"


MAX_JUMP = """
sensors:
  - {name: front, driver: sim, interval: 0.06, max_age: 5, filters: [{max_jump: 80}]}
actuators:
  - {name: movement, driver: sim}
reflexes:
  - {name: guard, sensor: front, below: 10, actuator: movement, command: stop,
     max_delay: 0.2}
  - {name: go, sensor: front, above: 15, actuator: movement, command: move}
"""


def test_max_jump_drops_a_lone_outlier_and_accepts_a_sustained_new_level():
    robot = Robot(MAX_JUMP)
    robot.read("front", 100, 0.0)
    robot.read("front", 100, 0.06)
    assert robot.state("movement") == "MOVING"
    robot.read("front", 2, 0.12)  # a lone zero, 98 cm from the last: dropped
    robot.read("front", 100, 0.18)
    assert robot.state("movement") == "MOVING"
    assert robot.seen("front") == [100, 100, 100]
    robot.read("front", 5, 0.24)
    robot.read("front", 5, 0.30)
    assert robot.state("movement") == "MOVING", "two outliers in a row are still outliers"
    robot.read("front", 5, 0.36)  # the third: the new level
    assert robot.state("movement") == "STOPPED"
    assert robot.seen("front")[-1] == 5


COMPOUND = """
sensors:
  - {name: front, driver: sim, interval: 0.1, max_age: 5}
  - {name: bumper, type: binary, driver: sim, interval: 0.1, max_age: 5}
actuators:
  - {name: buzzer, type: output, driver: sim}
reflexes:
  - name: warn
    when: {REFLEX}
    actuators: [buzzer]
    command: "on"
"""


def compound(when: str, hold: float = 0) -> Robot:
    text = COMPOUND.replace("{REFLEX}", when)
    if hold:
        text += f"    for: {hold}\n"
    return Robot(text)


def test_all_fires_when_its_last_part_holds_and_not_before():
    robot = compound("{all: [{sensor: front, below: 60}, {sensor: front, rate_below: -40}]}")
    # Falling at 100 cm/s from the start, but only below 60 from 0.4 s on.
    for i, value in enumerate((100, 90, 80, 70)):
        robot.read("front", value, i * 0.1)
        assert robot.state("buzzer") == "OFF", f"fired at {value} cm"
    robot.read("front", 59, 0.4)
    assert robot.state("buzzer") == "ON"
    assert robot.fired() == ["warn"]
    event = next(e for e in robot.published if e["type"] == "reflex")
    assert event["data"]["condition"] == "front < 60cm and front falling > 40cm/s"


def test_all_does_not_fire_near_but_still():
    robot = compound("{all: [{sensor: front, below: 60}, {sensor: front, rate_below: -40}]}")
    for i in range(8):
        robot.read("front", 30, i * 0.1)  # near, not approaching
    assert robot.state("buzzer") == "OFF"


def test_any_fires_on_either_part():
    robot = compound("{any: [{sensor: front, below: 10}, {sensor: bumper, active: true}]}")
    robot.read("front", 50, 0.0)
    robot.read("bumper", 0, 0.0)
    assert robot.state("buzzer") == "OFF"
    robot.read("bumper", 1, 0.1)
    assert robot.state("buzzer") == "ON"
    other = compound("{any: [{sensor: front, below: 10}, {sensor: bumper, active: true}]}")
    other.read("bumper", 0, 0.0)
    other.read("front", 9, 0.1)
    assert other.state("buzzer") == "ON"


def test_for_fires_exactly_when_the_condition_has_held_that_long_between_readings():
    robot = compound("{sensor: front, below: 60}", hold=0.25)
    robot.read("front", 50, 0.0)
    robot.read("front", 50, 0.1)
    robot.read("front", 50, 0.2)
    robot.tick(0.24)
    assert robot.state("buzzer") == "OFF", "fired before its for: ran out"
    robot.tick(0.25)  # no reading at 0.25: the monitor re-evaluates at the due moment
    assert robot.state("buzzer") == "ON"
    event = next(e for e in robot.published if e["type"] == "reflex")
    assert event["data"]["condition"] == "front < 60cm for 0.25s"


def test_for_starts_again_when_the_condition_breaks():
    robot = compound("{sensor: front, below: 60}", hold=0.25)
    robot.read("front", 50, 0.0)
    robot.read("front", 70, 0.2)  # breaks it
    robot.read("front", 50, 0.3)
    robot.tick(0.5)
    assert robot.state("buzzer") == "OFF"
    robot.tick(0.55)
    assert robot.state("buzzer") == "ON"


def test_rate_below_fires_when_the_rate_over_its_window_crosses_and_not_before():
    robot = compound("{sensor: front, rate_below: -40}")
    for at, value in ((0.0, 100), (0.1, 99), (0.2, 95)):  # -10, then -25 cm/s
        robot.read("front", value, at)
        assert robot.state("buzzer") == "OFF"
    robot.read("front", 86, 0.3)  # (86 - 100) / 0.3 = -46.7 cm/s
    assert robot.state("buzzer") == "ON"


TWO_MOTORS = """
sensors:
  - {name: front, driver: sim, interval: 0.1, max_age: 0.5}
  - {name: bumper, type: binary, driver: sim, interval: 0.1, max_age: 0.5}
actuators:
  - {name: left_motor, driver: sim}
  - {name: right_motor, driver: sim}
reflexes:
  - name: guard
    when: {any: [{sensor: front, below: 10}, {sensor: bumper, active: true}]}
    actuators: [left_motor, right_motor]
    command: stop
  - {name: go, sensor: front, above: 15, actuators: [left_motor, right_motor], command: move}
"""


def test_one_guard_stops_both_motors_with_one_reflex_event():
    robot = Robot(TWO_MOTORS)
    robot.read("bumper", 0, 0.0)
    robot.read("front", 50, 0.0)
    assert (robot.state("left_motor"), robot.state("right_motor")) == ("MOVING", "MOVING")
    robot.read("bumper", 1, 0.1)
    assert (robot.state("left_motor"), robot.state("right_motor")) == ("STOPPED", "STOPPED")
    assert robot.fired() == ["go", "guard"]
    robot.read("bumper", 0, 0.2)
    robot.read("front", 50, 0.2)
    assert robot.state("left_motor") == "MOVING"


def test_a_stale_sensor_in_a_compound_guard_puts_both_motors_in_their_safe_state():
    robot = Robot(TWO_MOTORS)
    robot.read("bumper", 0, 0.0)
    robot.read("front", 50, 0.0)
    assert robot.state("right_motor") == "MOVING"
    for i in range(1, 6):  # the front keeps reading; the bumper has gone silent
        robot.read("front", 50, i * 0.1)
        robot.tick(i * 0.1)
    robot.tick(0.6)
    assert (robot.state("left_motor"), robot.state("right_motor")) == ("STOPPED", "STOPPED")
    assert "sensor_timeout" in robot.fired()
    robot.read("front", 50, 0.7)
    assert robot.state("left_motor") == "STOPPED", "the bumper is still silent"


RELAY = """
sensors:
  - {name: tank_temp, type: temperature, driver: sim, interval: 1, max_age: 100}
actuators:
  - {name: compressor, type: output, driver: sim, min_on: 10, min_off: 30}
reflexes:
  - {name: cool, sensor: tank_temp, above: 30, actuator: compressor, command: "on"}
  - {name: cooled, sensor: tank_temp, below: 25, actuator: compressor, command: "off"}
"""


def test_min_off_holds_a_relay_off_and_a_guard_still_turns_it_off_at_once():
    robot = Robot(RELAY)
    robot.read("tank_temp", 35, 29.0)
    assert robot.state("compressor") == "OFF", "off since the start: it rests 30 s first"
    robot.read("tank_temp", 35, 30.0)
    assert robot.state("compressor") == "ON"
    robot.read("tank_temp", 20, 31.0)  # min_on 10 never delays the safe state
    assert robot.state("compressor") == "OFF"
    robot.read("tank_temp", 35, 32.0)
    robot.read("tank_temp", 35, 60.9)
    assert robot.state("compressor") == "OFF", "on again before its 30 s off"
    robot.read("tank_temp", 35, 61.0)
    assert robot.state("compressor") == "ON"
    robot.read("tank_temp", 20, 62.0)
    assert robot.state("compressor") == "OFF"


def test_every_change_is_logged_at_info_with_its_reflex_and_a_firing_that_changes_nothing_at_debug(
    caplog,
):
    caplog.set_level(logging.DEBUG, logger="anse_hw.engine")
    robot = Robot(TWO_MOTORS)
    robot.read("bumper", 0, 0.0)
    robot.read("front", 50, 0.0)
    robot.read("front", 8.5, 0.1)
    robot.read("front", 8, 0.2)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    why = "front < 10cm or bumper active; front read 8.5cm"
    assert ("INFO", f"left_motor STOPPED by guard ({why})") in said
    assert ("INFO", f"right_motor STOPPED by guard ({why})") in said
    assert (
        "DEBUG",
        "guard fired without changing anything (front < 10cm or bumper active)",
    ) in said
