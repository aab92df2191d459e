"""Compound reflex conditions on exact timed sequences (no daemon: they are pure).

What a robot builder notices: a compound guard fires exactly when its parts
say so and `for:` has run out, never a reading early; a silent sensor makes
the condition unknown only where it could matter; the text on the wire reads
like the YAML; a bad `when:` is one line naming the key.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anse_hw.conditions import (
    HISTORY_MAX,
    Condition,
    ConditionSpecError,
    Evaluator,
    Group,
    Leaf,
    one_line,
    parse_hold,
    parse_when,
)
from anse_hw.kinds import SENSOR_KINDS

WHERE = ("reflexes", 0, "when")
DISTANCE, TEMPERATURE, BINARY = (SENSOR_KINDS[k] for k in ("distance", "temperature", "binary"))
SENSORS = {"front": DISTANCE, "rear": DISTANCE, "tank_temp": TEMPERATURE, "bumper": BINARY}
UNITS = {"front": "cm", "rear": "cm", "tank_temp": "°C", "bumper": ""}
AGES = {"front": 0.5, "rear": 0.5, "tank_temp": 3.0, "bumper": 0.5}


def when(raw: object, hold: float = 0.0) -> Condition:
    return Condition(parse_when(raw, WHERE, SENSORS), hold)


def evaluator(raw: object, hold: float = 0.0) -> Evaluator:
    return Evaluator(when(raw, hold), AGES)


def feed(ev: Evaluator, timed: list[tuple[float, str, float]]) -> list[bool]:
    """Each reading, then the verdict at its timestamp, as the engine will."""
    fired = []
    for taken, sensor, value in timed:
        ev.update(sensor, value, taken)
        fired.append(ev.holds(taken).fires)
    return fired


NEAR_AND_BUMPED = {"all": [{"sensor": "front", "below": 10}, {"sensor": "bumper", "active": True}]}
NEAR_OR_BUMPED = {"any": [{"sensor": "front", "below": 10}, {"sensor": "bumper", "active": True}]}


# -- all / any / nesting ---------------------------------------------------


def test_all_fires_only_when_every_part_holds() -> None:
    ev = evaluator(NEAR_AND_BUMPED)
    got = feed(
        ev, [(0.0, "front", 5), (0.01, "bumper", 0), (0.02, "bumper", 1), (0.03, "front", 50)]
    )
    assert got == [False, False, True, False]
    assert ev.holds(0.03).leaves == (False, True), "the dashboard sees which part holds"


def test_any_fires_when_one_part_holds() -> None:
    ev = evaluator(NEAR_OR_BUMPED)
    got = feed(
        ev, [(0.0, "front", 50), (0.01, "bumper", 0), (0.02, "bumper", 1), (0.03, "bumper", 0)]
    )
    assert got == [False, False, True, False]


def test_groups_nest() -> None:
    # Hot, or both distance sensors near.
    ev = evaluator(
        {
            "any": [
                {"sensor": "tank_temp", "above": 30},
                {"all": [{"sensor": "front", "below": 10}, {"sensor": "rear", "below": 10}]},
            ]
        }
    )
    got = feed(
        ev,
        [
            (0.0, "tank_temp", 20),
            (0.0, "front", 5),
            (0.01, "rear", 50),
            (0.02, "rear", 5),
            (0.03, "front", 50),
            (0.04, "tank_temp", 31),
        ],
    )
    assert got == [False, False, False, True, False, True]
    assert ev.holds(0.04).leaves == (True, False, True)


def test_an_active_false_leaf_holds_while_the_switch_is_released() -> None:
    ev = evaluator({"sensor": "bumper", "active": False})
    assert feed(ev, [(0.0, "bumper", 0), (0.1, "bumper", 1)]) == [True, False]


# -- for: ------------------------------------------------------------------


def test_for_fires_on_the_first_reading_that_has_held_long_enough_and_not_before() -> None:
    ev = evaluator({"sensor": "tank_temp", "above": 30}, hold=0.1)
    timed = [(round(0.05 * k, 2), "tank_temp", v) for k, v in enumerate([20, 31, 32, 31, 33, 31])]
    # True from 0.05 s: held 0, 0.05, 0.1 (fires at 0.15), ...
    assert feed(ev, timed) == [False, False, False, True, True, True]


def test_for_reports_its_progress_and_when_it_is_due() -> None:
    ev = evaluator({"sensor": "tank_temp", "above": 30}, hold=2.0)
    ev.update("tank_temp", 31, 10.0)
    assert ev.holds(10.0).due == 12.0
    halfway = ev.holds(11.0)
    assert (halfway.fires, halfway.held, halfway.progress) == (False, 1.0, 0.5)
    assert ev.holds(11.999).fires is False
    at_due = ev.holds(12.0)
    assert at_due.fires and at_due.progress == 1.0


def test_for_starts_again_when_the_condition_stops_holding() -> None:
    ev = evaluator({"sensor": "tank_temp", "above": 30}, hold=0.1)
    timed = [(0.0, "tank_temp", 31), (0.05, "tank_temp", 29), (0.1, "tank_temp", 31)]
    assert feed(ev, timed) == [False, False, False]
    verdict = ev.holds(0.15)
    assert (verdict.fires, verdict.held) == (False, pytest.approx(0.05))
    assert ev.holds(0.2).fires


def test_a_condition_that_turns_unknown_restarts_its_for() -> None:
    ev = evaluator({"sensor": "front", "below": 10}, hold=0.4)
    ev.update("front", 5, 0.0)
    assert ev.holds(0.0).state is True
    assert ev.holds(0.6).state is None, "no reading for more than max_age"
    ev.update("front", 5, 0.7)
    assert not ev.holds(0.7).fires, "held since 0.7, not since 0.0"
    assert not ev.holds(1.0).fires
    ev.update("front", 5, 1.1)
    assert ev.holds(1.1).fires


# -- rates -----------------------------------------------------------------


def every_100ms(sensor: str, values: list[float]) -> list[tuple[float, str, float]]:
    return [(round(0.1 * k, 1), sensor, v) for k, v in enumerate(values)]


def test_rate_below_fires_on_the_first_reading_whose_window_falls_fast_enough() -> None:
    ev = evaluator({"sensor": "front", "rate_below": -40})
    # Over the last 0.3 s: 0, 0, -10/0.3 = -33 cm/s, -20/0.3 = -67 cm/s.
    got = feed(ev, every_100ms("front", [100, 100, 100, 100, 90, 80, 80, 80, 80]))
    assert got == [False, False, False, False, False, True, True, False, False]


def test_rate_above_with_its_own_window() -> None:
    ev = evaluator({"sensor": "front", "rate_above": 50, "rate_window": 0.2})
    # Over the last 0.2 s: 0, +5/0.2 = 25 cm/s, +15/0.2 = 75 cm/s, 75, 25.
    got = feed(ev, every_100ms("front", [50, 50, 50, 55, 65, 70, 70]))
    assert got == [False, False, False, False, True, True, False]


def test_a_rate_needs_two_readings_in_its_window() -> None:
    ev = evaluator({"sensor": "front", "rate_below": -40})
    ev.update("front", 100, 0.0)
    assert ev.holds(0.0).state is None
    ev.update("front", 10, 0.5)  # the only earlier reading is outside 0.3 s
    assert ev.holds(0.5).state is None
    ev.update("front", 0, 0.6)
    assert ev.holds(0.6).state is True, "-10 cm over 0.1 s"


def test_a_forgotten_sensor_is_unknown_and_no_rate_spans_the_gap() -> None:
    ev = evaluator({"sensor": "front", "rate_below": -40})
    feed(ev, every_100ms("front", [100, 100, 100]))
    ev.forget("front")
    ev.update("front", 10, 0.3)
    assert ev.holds(0.3).state is None, "one reading since the fault: no rate yet"


def test_a_late_reading_is_dropped_and_history_stays_bounded() -> None:
    ev = evaluator({"sensor": "front", "rate_below": -40})
    feed(ev, every_100ms("front", [100, 99]))
    ev.update("front", 0, 0.05)  # older than the latest: taken, it would read -2000 cm/s
    assert ev.holds(0.1).state is False
    for k in range(3 * HISTORY_MAX):
        ev.update("front", 50, 1.0 + k * 1e-5)
    assert len(ev.history["front"]) <= HISTORY_MAX


def test_readings_of_sensors_the_condition_does_not_name_change_nothing() -> None:
    ev = evaluator({"sensor": "front", "below": 10})
    ev.update("rear", 5, 0.0)
    assert ev.holds(0.0).state is None


# -- unknown ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "front", "expected"),
    [
        (NEAR_AND_BUMPED, 50, False),  # False decides all, whatever the bumper says
        (NEAR_AND_BUMPED, 5, None),
        (NEAR_OR_BUMPED, 5, True),  # True decides any
        (NEAR_OR_BUMPED, 50, None),
    ],
)
def test_a_silent_sensor_is_unknown_only_where_it_could_decide(
    raw: dict, front: float, expected: bool | None
) -> None:
    ev = evaluator(raw)
    ev.update("front", front, 0.0)
    verdict = ev.holds(0.0)
    assert verdict.state is expected
    assert verdict.leaves[1] is None
    assert verdict.fires is (expected is True)


def test_a_reading_older_than_max_age_is_unknown() -> None:
    ev = evaluator({"sensor": "front", "below": 10})
    ev.update("front", 5, 1.0)
    assert ev.holds(1.5).state is True, "exactly max_age old is still fresh"
    assert ev.holds(1.5001).state is None


def test_an_evaluator_needs_every_sensors_max_age() -> None:
    with pytest.raises(ValueError, match="no max_age for bumper"):
        Evaluator(when(NEAR_AND_BUMPED), {"front": 0.5})


def test_sensors_lists_every_sensor_named_anywhere() -> None:
    cond = when(
        {
            "any": [
                {"sensor": "bumper", "active": True},
                {
                    "all": [
                        {"sensor": "front", "below": 10},
                        {"any": [{"sensor": "rear", "below": 5}]},
                    ]
                },
            ]
        }
    )
    assert cond.sensors() == {"bumper", "front", "rear"}


# -- text ------------------------------------------------------------------


def test_text_reads_like_the_seed() -> None:
    approach = {"all": [{"sensor": "front", "below": 60}, {"sensor": "front", "rate_below": -40}]}
    assert when(approach, 0.1).text(UNITS) == "front < 60cm and front falling > 40cm/s for 0.1s"
    assert when({"sensor": "tank_temp", "above": 30}).text(UNITS) == "tank_temp > 30°C"
    assert when(NEAR_OR_BUMPED).text(UNITS) == "front < 10cm or bumper active"
    assert when({"sensor": "bumper", "active": False}).text(UNITS) == "bumper inactive"


def test_text_of_rates_nesting_and_windows() -> None:
    rising = {"sensor": "front", "rate_above": 20, "rate_window": 0.5}
    assert when(rising).text(UNITS) == "front rising > 20cm/s over 0.5s"
    assert when({"sensor": "front", "rate_below": 5}).text(UNITS) == "front rate < 5cm/s"
    assert when({"sensor": "front", "rate_above": -5}).text(UNITS) == "front rate > -5cm/s"
    nested = {
        "any": [
            {"sensor": "tank_temp", "above": 30},
            {"all": [{"sensor": "front", "below": 10}, {"sensor": "rear", "below": 10}]},
            {"all": [{"sensor": "bumper", "active": True}]},
        ]
    }
    assert when(nested).text(UNITS) == (
        "tank_temp > 30°C or (front < 10cm and rear < 10cm) or bumper active"
    )


def test_the_one_line_form_is_the_same_tree_with_the_seeds_text() -> None:
    old = one_line("distance_sensor", below=10)
    assert old == Condition(
        parse_when({"sensor": "distance_sensor", "below": 10}, WHERE, {"distance_sensor": DISTANCE})
    )
    names = {"distance_sensor": "distance"}
    assert old.text({"distance_sensor": "cm"}, names) == "distance < 10cm"
    assert one_line("bumper", active=True).root == Leaf("bumper", "active", True)
    assert one_line("fan_temp", above=45).root == Leaf("fan_temp", "above", 45)
    with pytest.raises(ValueError, match="exactly one"):
        one_line("front", below=10, above=15)


# -- parsing ---------------------------------------------------------------


def test_parse_builds_the_tree() -> None:
    assert parse_when(NEAR_AND_BUMPED, WHERE, SENSORS) == Group(
        "all", (Leaf("front", "below", 10.0), Leaf("bumper", "active", True))
    )
    assert parse_hold(0.1, ("reflexes", 0, "for")) == 0.1


def nested(depth: int) -> dict:
    raw: dict = {"sensor": "front", "below": 10}
    for _ in range(depth):
        raw = {"all": [raw]}
    return raw


def looped() -> dict:
    """What `a: &a {all: [*a]}` gives: a list that contains its own mapping."""
    raw: dict = {"all": []}
    raw["all"].append(raw)
    return raw


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        ("front < 10", WHERE, "expected a mapping like {all: [...]} or {sensor: front, below: 60}"),
        ({"all": [], "any": []}, WHERE, "expected all or any, not both: nest one inside"),
        ({"all": [], "for": 1}, WHERE, "expected all alone, got for beside it"),
        ({"any": []}, (*WHERE, "any"), "expected a non-empty list of conditions, got []"),
        ({"all": {"sensor": "front"}}, (*WHERE, "all"), "non-empty list"),
        (nested(9), WHERE + ("all", 0) * 8 + ("all",), "nested deeper than 8 levels"),
        (looped(), WHERE + ("all", 0) * 8 + ("all",), "nested deeper than 8 levels"),
        ({"below": 10}, WHERE, "expected a sensor, like {sensor: front, below: 60}"),
        ({"sensor": "frnt", "below": 10}, (*WHERE, "sensor"), "did you mean 'front'?"),
        ({"sensor": 7, "below": 10}, (*WHERE, "sensor"), "unknown sensor '7'"),
        ({"sensor": "front", "belwo": 10}, (*WHERE, "belwo"), "did you mean 'below'?"),
        ({"sensor": "front"}, WHERE, "expected exactly one of below, above, active"),
        (
            {"sensor": "front", "below": 10, "above": 15},
            WHERE,
            "got below and above",
        ),
        (
            {"all": [{"sensor": "front", "below": 10}, {"sensor": "bumper", "below": 1}]},
            (*WHERE, "all", 1, "below"),
            "bumper is a binary sensor: it takes active: true or active: false",
        ),
        (
            {"sensor": "front", "active": True},
            (*WHERE, "active"),
            "front is a numeric sensor: it takes below, above, rate_below or rate_above",
        ),
        ({"sensor": "bumper", "active": 1}, (*WHERE, "active"), "expected true or false, got 1"),
        ({"sensor": "front", "below": "10cm"}, (*WHERE, "below"), "expected a number, got '10cm'"),
        ({"sensor": "front", "above": True}, (*WHERE, "above"), "expected a number, got True"),
        ({"sensor": "front", "below": float("inf")}, (*WHERE, "below"), "got inf"),
        (
            {"sensor": "front", "below": 10, "rate_window": 0.5},
            (*WHERE, "rate_window"),
            "rate_window goes with rate_below or rate_above",
        ),
        (
            {"sensor": "front", "rate_below": -40, "rate_window": 0},
            (*WHERE, "rate_window"),
            "above 0 and at most 10, got 0",
        ),
        (
            {"sensor": "front", "rate_below": -40, "rate_window": 60},
            (*WHERE, "rate_window"),
            "got 60",
        ),
        (
            {"all": [{"sensor": "bumper", "active": True}, {"sensor": "front", "below": -5}]},
            (*WHERE, "all", 1, "below"),
            "-5 is outside what a distance sensor can read (0 to 10000 cm), "
            "so the reflex would never fire",
        ),
        (
            {"any": [{"sensor": "tank_temp", "above": -200}]},
            (*WHERE, "any", 0, "above"),
            "so the reflex would always fire",
        ),
    ],
)
def test_every_bad_when_is_one_line_naming_its_key(raw: object, path: tuple, reason: str) -> None:
    with pytest.raises(ConditionSpecError) as caught:
        parse_when(raw, WHERE, SENSORS)
    assert caught.value.path == path
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "reason"), [(-1, "0 or more, got -1"), ("1s", "expected a number, got '1s'")]
)
def test_a_bad_for_is_one_line(raw: object, reason: str) -> None:
    with pytest.raises(ConditionSpecError, match=reason) as caught:
        parse_hold(raw, ("reflexes", 0, "for"))
    assert caught.value.path == ("reflexes", 0, "for")


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(list(SENSORS)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["all", "any", "sensor", "below", "active", "rate_above", "rate_window"]
            ),
            inner,
        )
    ),
    max_leaves=16,
)


@settings(max_examples=200, deadline=None)
@given(raw=YAML_VALUES)
def test_any_yaml_shape_is_a_tree_or_a_one_line_refusal(raw: object) -> None:
    try:
        cond = when(raw)
    except ConditionSpecError as e:
        assert "\n" not in str(e) and e.path[: len(WHERE)] == WHERE
    else:
        assert cond.sensors() <= set(SENSORS)
        assert cond.text(UNITS)
