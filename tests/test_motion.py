"""The drive's arithmetic on numbers alone (anse_hw.motion): mixing, the
speed cap, the ramp, the forward limit."""

from __future__ import annotations

import pytest

from anse_hw.motion import Ramp, aim_of, cap_forward, limit_cap, mix, twist_problem


@pytest.mark.parametrize(
    ("twist", "max_speed", "wheels"),
    [
        ((1.0, 0.0), 1.0, (1.0, 1.0)),  # straight ahead
        ((-0.5, 0.0), 1.0, (-0.5, -0.5)),  # straight back
        ((0.0, 0.5), 1.0, (-0.5, 0.5)),  # on the spot, counter-clockwise (left)
        ((0.0, -1.0), 1.0, (1.0, -1.0)),  # on the spot, clockwise (right)
        ((0.5, 0.25), 1.0, (0.25, 0.75)),  # a left curve: the right wheel faster
        ((0.5, 0.0), 0.8, (0.4, 0.4)),  # max_speed scales every duty
    ],
)
def test_a_twist_mixes_to_the_expected_wheel_duties_and_directions(twist, max_speed, wheels):
    assert mix(twist, max_speed) == pytest.approx(wheels)


def test_a_mix_beyond_full_is_clipped_keeping_the_ratio_between_the_wheels():
    """linear 1 + angular 0.5 would ask 1.5 of the right wheel: both scale
    down by the same factor, so the base still drives the same curve."""
    left, right = mix((1.0, 0.5), 0.8)
    assert right == pytest.approx(0.8), "the faster wheel is at max_speed, not beyond"
    assert left / right == pytest.approx(0.5 / 1.5)


def test_forward_is_capped_and_reverse_and_turning_are_not():
    assert cap_forward((0.9, 0.2), 0.3) == (0.3, 0.2)
    assert cap_forward((-0.9, 0.2), 0.0) == (-0.9, 0.2), "backing away is never limited"
    assert cap_forward((0.0, 1.0), 0.0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("distance", "cap"),
    [(100.0, 1.0), (60.0, 1.0), (37.5, 0.5), (15.0, 0.0), (3.0, 0.0), (None, 0.0)],
)
def test_a_limit_caps_in_proportion_to_the_distance_and_allows_nothing_without_one(distance, cap):
    assert limit_cap(distance, full_at=60.0, zero_at=15.0) == pytest.approx(cap)


def test_the_ramp_bounds_acceleration_per_wheel():
    ramp = Ramp(accel=2.0)
    assert ramp.aim((1.0, 0.5), now=0.0) == (0.0, 0.0), "nothing jumps to speed"
    seen = [ramp.step(t / 100) for t in range(1, 80)]
    rises = [b[0] - a[0] for a, b in zip([(0.0, 0.0), *seen], seen, strict=False)]
    assert max(rises) <= 2.0 * 0.01 + 1e-9, "at most accel * dt per step"
    assert seen[24] == pytest.approx((0.5, 0.5)), "0.25 s at 2/s"
    assert seen[-1] == (1.0, 0.5), "each wheel reaches its target, not beyond"
    assert not ramp.ramping


def test_slowing_and_stopping_are_never_ramped_and_reversing_passes_through_zero():
    ramp = Ramp(accel=1.0)
    ramp.aim((0.8, 0.8), now=0.0)
    assert ramp.step(10.0) == (0.8, 0.8)
    assert ramp.aim((0.2, 0.8), now=10.0) == (0.2, 0.8), "slower at once"
    assert ramp.aim((-0.5, 0.0), now=10.0) == (0.0, 0.0), "reverse: from zero, ramped"
    assert ramp.step(10.1) == pytest.approx((-0.1, 0.0))
    ramp.halt(10.1)
    assert ramp.current == (0.0, 0.0) and not ramp.ramping


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ({"linear": 0.5, "angular": 0}, None),
        ({"linear": 1.5, "angular": 0}, "linear must be from -1 to 1"),
        ({"linear": 0.5}, "both keys"),
        ({"linear": 0.5, "angular": 0, "x": 1}, "both keys"),
        ({"linear": True, "angular": 0}, "linear must be a number"),
        ({"linear": float("nan"), "angular": 0}, "linear must be from -1 to 1"),
        ("move", "both keys"),
    ],
)
def test_a_twist_command_is_two_numbers_in_range(command, problem):
    found = twist_problem(command)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("command", "aimed"),
    [
        ("move", ("move", (False, None))),
        ("reverse", ("reverse", (True, None))),
        ({"move": {"speed": 0.5}}, ("move", (False, 0.5))),
        ({"reverse": {"speed": 1}}, ("reverse", (True, 1.0))),
        ({"reverse": {"speed": 1.5}}, "speed must be from 0 to 1"),
        ({"move": {"speed": "fast"}}, "speed must be a number"),
        ({"move": {"speed": 0.5, "x": 1}}, "must be move | reverse"),
        ("stop", "must be move | reverse"),
    ],
)
def test_a_motor_move_is_move_or_reverse_with_an_optional_speed(command, aimed):
    found = aim_of(command)
    assert found == aimed if not isinstance(aimed, str) else aimed in found
