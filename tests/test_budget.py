"""The stop-delay budget: the figures `--check` will print, and proof on
sequences that a filtered stop is never later than the figure says.

What a robot builder notices: the budget names each sensor's filters and
their cost, a guard over its max_delay is refused with the figure, and the
figure is honest: random spikes and steps through real filter chains never
cross a stop threshold later than declared.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from anse_hw.budget import MAX_DELAY, parse_max_delay, stop_delay
from anse_hw.conditions import Condition, Group, Leaf
from anse_hw.filters import (
    Calibrate,
    Debounce,
    Ema,
    FilterChain,
    MaxJump,
    Median,
)
from anse_hw.shape import SpecError

FRONT_NEAR = Leaf("front", "below", 60.0)
APPROACH = Group("all", (FRONT_NEAR, Leaf("front", "rate_below", -40.0)))


def chain(*filters: object) -> FilterChain:
    return FilterChain(tuple(filters))


# -- figures ---------------------------------------------------------------


def test_a_median_of_3_at_60ms_and_for_is_itemised() -> None:
    budget = stop_delay(Condition(APPROACH, 0.1), {"front": chain(Median(3))}, {"front": 0.06})
    assert budget.breakdown == "front: median 3 at 60 ms = 60 ms; for 0.1 s = 100 ms; total 160 ms"
    assert budget.total == pytest.approx(0.16)
    assert budget.refusal() is None


def test_a_chain_shows_each_filters_share() -> None:
    spec = chain(Median(3), MaxJump(80), Ema(0.5), Calibrate(1.0, -1.5))
    budget = stop_delay(Condition(FRONT_NEAR), {"front": spec}, {"front": 0.06})
    assert budget.breakdown == (
        "front: median 3 (60 ms) + max_jump 80 (120 ms) + ema 0.5 (60 ms) "
        "+ calibrate scale 1 offset -1.5 (0 ms) at 60 ms = 240 ms; total 240 ms"
    )


@pytest.mark.parametrize(
    ("spec", "interval", "ms"),
    [
        (Median(9), 0.06, 240),  # gpiozero's default window, S9
        (Median(15), 0.02, 140),
        (Ema(0.2), 0.05, 200),  # (1-w)/w = 4 readings
        (Ema(0.3), 0.1, 300),  # 2.33 -> 3 readings
        (Ema(1), 0.1, 0),
        (Debounce(0.03), 0.01, 30),
        (Debounce(0.03), 0.02, 40),  # the first reading 30 ms after the change is at 40
        (Calibrate(2.0, 1.0), 0.1, 0),
    ],
)
def test_each_filters_figure(spec: object, interval: float, ms: float) -> None:
    budget = stop_delay(Condition(Leaf("s", "below", 1.0)), {"s": chain(spec)}, {"s": interval})
    assert budget.total * 1000 == pytest.approx(ms)


def test_a_compound_guard_waits_for_its_slowest_sensor_not_the_sum() -> None:
    both = Group("any", (FRONT_NEAR, Leaf("rear", "below", 10.0), Leaf("bumper", "active", True)))
    budget = stop_delay(
        Condition(both, 0.05),
        {"front": chain(Median(5)), "rear": chain(Ema(0.5))},
        {"front": 0.06, "rear": 0.1, "bumper": 0.01},
    )
    assert budget.breakdown == (
        "bumper: unfiltered; front: median 5 at 60 ms = 120 ms; rear: ema 0.5 at 100 ms = 100 ms; "
        "for 0.05 s = 50 ms; total 170 ms (the slowest sensor + for)"
    )


def test_a_guard_over_max_delay_is_refused_naming_the_figure() -> None:
    budget = stop_delay(Condition(FRONT_NEAR, 0.1), {"front": chain(Median(9))}, {"front": 0.06})
    assert budget.refusal() == (
        "filters and for: delay a stop by up to 340 ms, over max_delay 250 ms "
        "(front: median 9 at 60 ms = 240 ms; for 0.1 s = 100 ms; total 340 ms)"
    )
    assert budget.refusal(max_delay=0.4) is None


def test_a_guard_exactly_at_max_delay_fits_and_a_millisecond_more_does_not() -> None:
    front = ({"front": chain(Median(7))}, {"front": 0.06})
    at = stop_delay(Condition(FRONT_NEAR, 0.07), *front)
    assert at.total == pytest.approx(MAX_DELAY)
    assert at.refusal() is None
    over = stop_delay(Condition(FRONT_NEAR, 0.071), *front)
    assert "up to 251 ms, over max_delay 250 ms" in over.refusal()


def test_an_unfiltered_guard_costs_only_its_for() -> None:
    budget = stop_delay(Condition(FRONT_NEAR), {}, {})
    assert (budget.total, budget.breakdown) == (0.0, "front: unfiltered; total 0 ms")


@pytest.mark.parametrize(("raw", "reason"), [(0, "above 0, got 0"), ("1", "expected a number")])
def test_a_bad_max_delay_is_one_line(raw: object, reason: str) -> None:
    with pytest.raises(SpecError, match=reason) as caught:
        parse_max_delay(raw, ("reflexes", 3, "max_delay"))
    assert caught.value.path == ("reflexes", 3, "max_delay")


# -- the figures hold on sequences -----------------------------------------

FAR, NEAR, STOP_BELOW = 200.0, 5.0, 10.0


def first_below(chain_: FilterChain, values: list[float], threshold: float) -> int | None:
    """The index of the first filtered reading below `threshold`."""
    filtering = chain_.start()
    for i, v in enumerate(values):
        out = filtering.step(v, i * 0.06)
        if out is not None and out < threshold:
            return i
    return None


@settings(max_examples=300, deadline=None)
@given(
    n=st.sampled_from([3, 5, 7, 9, 15]),
    noise=st.lists(st.sampled_from([FAR, NEAR, FAR + 50, 0.0]), max_size=40),
)
def test_a_median_filtered_step_stops_no_later_than_declared(n: int, noise: list[float]) -> None:
    """Whatever spikes came before, a real obstacle gets through in n//2 readings."""
    readings = [FAR] * n + noise + [NEAR] * (n + 2)
    step = n + len(noise)
    crossed = first_below(chain(Median(n)), readings, STOP_BELOW)
    assert crossed is not None
    assert (crossed - step) * 0.06 <= Median(n).delay(0.06) + 1e-9


@settings(max_examples=300, deadline=None)
@given(
    n=st.sampled_from([3, 5, 7, 9, 15]),
    bursts=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 7)), max_size=8),
)
def test_spike_bursts_shorter_than_half_a_median_never_stop(
    n: int, bursts: list[tuple[int, int]]
) -> None:
    readings = [FAR] * n
    for gap, length in bursts:
        readings += [FAR] * (n + gap) + [NEAR] * min(length, n // 2)
    readings += [FAR] * n
    assert first_below(chain(Median(n)), readings, STOP_BELOW) is None
    # ...and the clean step is exactly as late as declared: the figure is tight.
    step = len(readings)
    crossed = first_below(chain(Median(n)), [*readings, *[NEAR] * n], STOP_BELOW)
    assert crossed == step + n // 2


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(10, 100),
    jitter=st.lists(st.integers(-9, 9), min_size=20, max_size=20),
    drop=st.integers(101, 190),
)
def test_max_jump_passes_a_step_no_later_than_declared(
    limit: int, jitter: list[int], drop: int
) -> None:
    """Noise within the limit passes untouched; a step beyond it in 2 readings."""
    before = [FAR + j for j in jitter[:10]]
    after = [FAR - drop + j for j in jitter[10:]]
    crossed = first_below(chain(MaxJump(limit)), before + after, FAR - drop + 10)
    assert crossed is not None
    assert (crossed - len(before)) * 0.06 <= MaxJump(limit).delay(0.06) + 1e-9


WEIGHTS = [0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.6, 0.75, 0.9, 1.0]


@settings(max_examples=300, deadline=None)
@given(w=st.sampled_from(WEIGHTS), speed=st.integers(1, 40), threshold=st.integers(20, 150))
@example(w=0.5, speed=10, threshold=55)
def test_ema_follows_an_approaching_obstacle_within_its_figure(
    w: float, speed: int, threshold: int
) -> None:
    """Settled at 200 cm, then closing at a constant speed: the average
    crosses any threshold at most ceil((1-w)/w) readings after the raw."""
    readings = [FAR] * 5 + [FAR - speed * k for k in range(1, 400)]
    raw = next(i for i, v in enumerate(readings) if v < threshold)
    crossed = first_below(chain(Ema(w)), readings, threshold)
    assert crossed is not None
    assert (crossed - raw) * 0.06 <= Ema(w).delay(0.06) + 1e-9


@settings(max_examples=300, deadline=None)
@given(w=st.sampled_from(WEIGHTS), level=st.integers(0, 99), threshold=st.integers(1, 100))
def test_ema_crosses_a_step_that_lands_past_halfway_within_its_figure(
    w: float, level: int, threshold: int
) -> None:
    """From 200 cm down to `level`; the threshold is at or above halfway."""
    threshold = max(threshold + level, math.ceil((FAR + level) / 2))
    readings = [FAR] * 5 + [float(level)] * 200
    crossed = first_below(chain(Ema(w)), readings, threshold)
    assert crossed is not None
    assert (crossed - 5) * 0.06 <= Ema(w).delay(0.06) + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    noise=st.lists(st.sampled_from([FAR, FAR - 5, NEAR]), max_size=30),
    extra=st.lists(st.sampled_from([FAR, NEAR]), max_size=3),
)
def test_a_whole_chain_stops_no_later_than_the_sum_it_declares(
    noise: list[float], extra: list[float]
) -> None:
    """median 3, max_jump 80, ema 0.5, calibrate: spikes then a real step."""
    spec = chain(Median(3), MaxJump(80), Ema(0.5), Calibrate(1.0, -1.5))
    readings = [FAR] * 3 + noise + [NEAR] * 20
    step = 3 + len(noise)
    # Below halfway from FAR to NEAR, the figure covers the average too.
    crossed = first_below(spec, readings, (FAR + NEAR) / 2)
    assert crossed is not None
    assert (crossed - step) * 0.06 <= spec.delay(0.06) + 1e-9


def test_a_debounced_press_counts_no_later_than_declared() -> None:
    for interval in (0.005, 0.01, 0.02, 0.025):
        stage = Debounce(0.03).start()
        times = [k * interval for k in range(40)]
        out = [stage.step(0.0 if k < 5 else 1.0, t) for k, t in enumerate(times)]
        passed = next(k for k, v in enumerate(out) if v == 1.0)
        assert times[passed] - times[5] == pytest.approx(Debounce(0.03).delay(interval))
