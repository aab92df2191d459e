"""Per-sensor filters on exact sequences of readings (no daemon: they are pure).

What a robot builder notices: a lone HC-SR04 spike never stops or restarts
the motor, a real obstacle still does, a bouncing bumper counts once, and a
bad `filters:` entry is one line naming the key.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anse_hw.filters import (
    Calibrate,
    Debounce,
    Ema,
    FilterChain,
    FilterSpecError,
    MaxJump,
    Median,
    parse_filters,
)

WHERE = ("sensors", 0, "filters")
FAR, NEAR, STOP_BELOW, RESUME_ABOVE = 100.0, 5.0, 10.0, 15.0


def run(chain: FilterChain, values: list[float], interval: float = 0.06) -> list[float | None]:
    """Every reading through a fresh chain, at a steady interval."""
    filtering = chain.start()
    return [filtering.step(v, i * interval) for i, v in enumerate(values)]


def chain(*filters: object) -> FilterChain:
    return FilterChain(tuple(filters))


# -- median ----------------------------------------------------------------


def test_median_3_lets_no_single_near_spike_below_the_stop_threshold() -> None:
    readings = [FAR, FAR, NEAR, FAR, FAR, NEAR, FAR, FAR, FAR, NEAR, FAR, FAR]
    out = run(chain(Median(3)), readings)
    assert out[:2] == [None, None], "a half-full window passes nothing"
    assert all(v is not None and v >= STOP_BELOW for v in out[2:])


def test_median_3_stops_on_three_near_readings_one_interval_after_the_first() -> None:
    readings = [FAR, FAR, FAR, NEAR, NEAR, NEAR, NEAR]
    out = run(chain(Median(3)), readings)
    assert out == [None, None, FAR, FAR, NEAR, NEAR, NEAR]
    first_near, first_stop = 3, 4
    assert (first_stop - first_near) * 0.06 == pytest.approx(Median(3).delay(0.06))


def test_median_3_lets_no_single_far_spike_restart_a_stopped_motor() -> None:
    readings = [NEAR, NEAR, NEAR, FAR, NEAR, NEAR, FAR, NEAR, NEAR, 400.0, NEAR]
    out = run(chain(Median(3)), readings)
    assert all(v is not None and v <= RESUME_ABOVE for v in out[2:])


def test_median_5_rejects_two_spikes_in_a_row_but_not_three() -> None:
    two = run(chain(Median(5)), [FAR] * 5 + [NEAR, NEAR] + [FAR] * 5)
    assert all(v == FAR for v in two[4:])
    three = run(chain(Median(5)), [FAR] * 5 + [NEAR, NEAR, NEAR] + [FAR] * 5)
    assert three[7] == NEAR, "the third near reading is the majority of five"


# -- max_jump --------------------------------------------------------------


def test_max_jump_drops_a_lone_outlier_and_keeps_the_level() -> None:
    out = run(chain(MaxJump(80)), [100, 101, 2, 99, 100])
    assert out == [100, 101, None, 99, 100]


def test_max_jump_accepts_a_sustained_new_level_on_its_third_reading() -> None:
    out = run(chain(MaxJump(80)), [100, 100, 5, 6, 5, 4, 5])
    assert out == [100, 100, None, None, 5, 4, 5]
    assert MaxJump(80).delay(0.06) == pytest.approx((4 - 2) * 0.06)


def test_max_jump_counts_only_outliers_in_a_row() -> None:
    out = run(chain(MaxJump(80)), [100, 5, 5, 100, 5, 5, 100])
    assert out == [100, None, None, 100, None, None, 100]


def test_max_jump_passes_a_jump_of_exactly_the_limit_and_the_first_reading() -> None:
    assert run(chain(MaxJump(80)), [3, 83, 3.0]) == [3, 83, 3.0]


# -- ema, calibrate, order -------------------------------------------------


def test_ema_weighs_the_new_reading_and_starts_at_the_first() -> None:
    assert run(chain(Ema(0.5)), [100, 0, 0, 100]) == [100, 50, 25, 62.5]
    assert run(chain(Ema(1)), [100, 0, 7]) == [100, 0, 7], "weight 1 is no filter"


def test_ema_follows_an_approaching_obstacle_one_reading_late_at_weight_half() -> None:
    # Settled at 100 cm, then closing 10 cm per reading: the raw crosses
    # 55 cm at 50, the average (1-w)/w = 1 reading later.
    readings = [100.0] * 5 + [100.0 - 10 * k for k in range(1, 10)]
    out = run(chain(Ema(0.5)), readings)
    raw_cross = next(i for i, v in enumerate(readings) if v < 55)
    ema_cross = next(i for i, v in enumerate(out) if v is not None and v < 55)
    assert ema_cross - raw_cross == 1


def test_calibrate_scales_then_offsets() -> None:
    out = run(chain(Calibrate(scale=2.0, offset=-1.5)), [10.0, 0.0])
    assert out == [18.5, -1.5]


def test_filters_apply_in_the_order_given() -> None:
    # Calibrated first, 10 -> 40 is a jump of 60 and dropped; jumped first, 30 passes.
    assert run(chain(Calibrate(scale=2.0), MaxJump(50)), [10, 40]) == [20, None]
    assert run(chain(MaxJump(50), Calibrate(scale=2.0)), [10, 40]) == [20, 80]


def test_each_start_is_a_fresh_chain() -> None:
    spec = chain(Median(3))
    first = spec.start()
    for v in (FAR, FAR, FAR):
        first.step(v, 0.0)
    assert spec.start().step(NEAR, 1.0) is None, "a new chain's window is empty"


# -- debounce --------------------------------------------------------------


def test_debounce_passes_a_change_once_it_has_held_its_time_by_the_timestamps() -> None:
    timed = [(0.00, 0), (0.01, 1), (0.02, 1), (0.03, 1), (0.04, 1), (0.05, 1)]
    stage = Debounce(0.03).start()
    out = [stage.step(v, t) for t, v in timed]
    assert out == [0, None, None, None, 1, 1], "held 30 ms at 0.04 s, not before"


def test_debounce_swallows_a_bounce_and_keeps_the_settled_state() -> None:
    timed = [(0.00, 1), (0.01, 0), (0.02, 1), (0.03, 0), (0.035, 1), (0.05, 1)]
    stage = Debounce(0.03).start()
    assert [stage.step(v, t) for t, v in timed] == [1, None, 1, None, 1, 1]


def test_debounce_measures_time_not_readings() -> None:
    stage = Debounce(0.03).start()
    out = [stage.step(v, t) for t, v in [(0.0, 0), (0.005, 1), (0.036, 1)]]
    assert out == [0, None, 1], "two readings 31 ms apart are enough"


def test_debounce_releases_the_same_way() -> None:
    stage = Debounce(0.02).start()
    out = [stage.step(v, t) for t, v in [(0.0, 1), (0.1, 0), (0.11, 0), (0.12, 0)]]
    assert out == [1, None, None, 0]


def test_debounce_zero_passes_every_change_at_once() -> None:
    stage = Debounce(0).start()
    assert [stage.step(v, t) for t, v in [(0.0, 0), (0.01, 1), (0.02, 0)]] == [0, 1, 0]


# -- parsing ---------------------------------------------------------------


def test_parse_builds_the_chain_in_order() -> None:
    raw = [
        {"median": 3},
        {"max_jump": 80},
        {"ema": 0.5},
        {"calibrate": {"scale": 1.0, "offset": -1.5}},
    ]
    assert parse_filters(raw, WHERE) == chain(
        Median(3), MaxJump(80), Ema(0.5), Calibrate(1.0, -1.5)
    )
    assert parse_filters([{"calibrate": {"offset": 2}}], WHERE) == chain(Calibrate(1.0, 2.0))
    assert parse_filters([{"debounce": 0.03}], WHERE, binary=True) == chain(Debounce(0.03))
    assert parse_filters([], WHERE) == FilterChain()


@pytest.mark.parametrize(
    ("raw", "binary", "path", "reason"),
    [
        ({"median": 3}, False, WHERE, "expected a list of filters like [{median: 3}], got {"),
        (["median"], False, (*WHERE, 0), "expected a mapping like {median: 3}, got 'median'"),
        ([{}], False, (*WHERE, 0), "expected one filter per list item, got nothing"),
        (
            [{"median": 3, "ema": 0.5}],
            False,
            (*WHERE, 0),
            "expected one filter per list item, got median, ema",
        ),
        ([{"medain": 3}], False, (*WHERE, 0, "medain"), "did you mean 'median'?"),
        ([{"kalman": 3}], False, (*WHERE, 0, "kalman"), "expected one of: median, max_jump"),
        (
            [{"median": 3}, {"median": 4}],
            False,
            (*WHERE, 1, "median"),
            "an even median averages two readings, so one spike moves it; use 3 or 5",
        ),
        ([{"median": 17}], False, (*WHERE, 0, "median"), "1 to 15, got 17"),
        ([{"median": 0}], False, (*WHERE, 0, "median"), "1 to 15, got 0"),
        ([{"median": 3.0}], False, (*WHERE, 0, "median"), "odd whole number"),
        ([{"median": True}], False, (*WHERE, 0, "median"), "got True"),
        ([{"max_jump": 0}], False, (*WHERE, 0, "max_jump"), "greater than 0, got 0"),
        ([{"max_jump": "80cm"}], False, (*WHERE, 0, "max_jump"), "expected a number"),
        ([{"max_jump": float("nan")}], False, (*WHERE, 0, "max_jump"), "got nan"),
        ([{"max_jump": 10**400}], False, (*WHERE, 0, "max_jump"), "expected a number, got 1000"),
        ([{"ema": 0}], False, (*WHERE, 0, "ema"), "above 0 and at most 1, got 0"),
        ([{"ema": 1.5}], False, (*WHERE, 0, "ema"), "above 0 and at most 1, got 1.5"),
        ([{"ema": None}], False, (*WHERE, 0, "ema"), "expected a number, got None"),
        ([{"calibrate": 2}], False, (*WHERE, 0, "calibrate"), "{scale: 1.0, offset: -1.5}"),
        ([{"calibrate": {}}], False, (*WHERE, 0, "calibrate"), "scale, offset or both"),
        (
            [{"calibrate": {"scael": 2}}],
            False,
            (*WHERE, 0, "calibrate", "scael"),
            "did you mean 'scale'?",
        ),
        (
            [{"calibrate": {"scale": 0}}],
            False,
            (*WHERE, 0, "calibrate", "scale"),
            "greater than 0, got 0",
        ),
        (
            [{"calibrate": {"offset": "x"}}],
            False,
            (*WHERE, 0, "calibrate", "offset"),
            "expected a number",
        ),
        ([{"debounce": -0.1}], True, (*WHERE, 0, "debounce"), "0 or more, got -0.1"),
        (
            [{"debounce": 0.03}],
            False,
            (*WHERE, 0, "debounce"),
            "does not apply to a numeric sensor; it takes median, max_jump, ema, calibrate",
        ),
        (
            [{"median": 3}],
            True,
            (*WHERE, 0, "median"),
            "does not apply to a binary sensor; it takes debounce",
        ),
    ],
)
def test_every_bad_filter_is_one_line_naming_its_key(
    raw: object, binary: bool, path: tuple, reason: str
) -> None:
    with pytest.raises(FilterSpecError) as caught:
        parse_filters(raw, WHERE, binary=binary)
    assert caught.value.path == path
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["median", "ema", "calibrate", "scale", "x"]), inner)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(raw=YAML_VALUES, binary=st.booleans())
def test_any_yaml_shape_is_a_chain_or_a_one_line_refusal(raw: object, binary: bool) -> None:
    try:
        parse_filters(raw, WHERE, binary=binary)
    except FilterSpecError as e:
        assert "\n" not in str(e) and e.path[: len(WHERE)] == WHERE
