"""Wheel feedback on numbers alone: speed from encoder counts, a speed loop
per wheel, and stall detection (docs/safety.md, W1).

No pins, no ports, no clock: the caller hands in the time and the counts
(the drive's control thread, or a test stepping a simulated plant).  The PID
itself is simple-pid's, a small pure-Python controller with clamped output
and integral; this module adds what simple-pid leaves to its user: a
feed-forward so the loop only trims, limits that keep duty within -1..1,
and an integral that gathers only near the target, so a wheel held still
does not wind it up and overshoot when let go.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from simple_pid import PID

__all__ = [
    "DEFAULT_MAX_RPS",
    "DEFAULT_STALL_AFTER",
    "INTEGRATE_WITHIN",
    "STALL_DUTY",
    "Gains",
    "SpeedLoop",
    "StallDetector",
    "WheelSpeed",
    "counts_per_rev",
    "encoders_problem",
    "stall_problem",
]

#: Below this duty a DC motor may well not turn at all (static friction,
#: a low battery), so no motion there is no stall.
STALL_DUTY = 0.15


class WheelSpeed:
    """A wheel's speed in revolutions per second, from counts over a window.

    One interval's count difference is a handful of counts at low speed, so
    speed over a window (the oldest count still inside it to the newest)
    smooths the quantisation at the cost of a window's delay.
    """

    def __init__(self, counts_per_rev: int, window: float = 0.1) -> None:
        self.counts_per_rev = counts_per_rev
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, count: int) -> float:
        """Record `count` at `now` and return the speed over the window."""
        samples = self._samples
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        return self.speed

    @property
    def speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / self.counts_per_rev / (t1 - t0) if t1 > t0 else 0.0

    def reset(self) -> None:
        self._samples.clear()


class StallDetector:
    """A wheel commanded at STALL_DUTY or more whose count has not changed
    for `after` seconds is stalled: a jammed wheel, a broken encoder wire
    or a motor that has burnt out all look like this, and each must stop."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._count: int | None = None
        self._since = 0.0  # when it last turned, or was last not commanded

    def update(self, now: float, duty: float, count: int) -> bool:
        """True once the wheel has been stalled for `after` seconds."""
        if abs(duty) < STALL_DUTY or count != self._count:
            self._count = count
            self._since = now
            return False
        return now - self._since >= self.after


class Gains:
    """A speed loop's tuning: `kp` duty per rev/s of error, `ki` duty per
    rev of accumulated error, and `max_rps` the wheel's free speed at full
    duty (the feed-forward: a target of max_rps/2 starts at duty 0.5)."""

    def __init__(self, max_rps: float, kp: float = 0.2, ki: float = 2.0) -> None:
        self.max_rps = max_rps
        self.kp = kp
        self.ki = ki


#: The integral only gathers while the speed is within this fraction of the
#: target: a wheel held still (error 100 %) or still spinning up gathers none.
INTEGRATE_WITHIN = 0.5


class SpeedLoop:
    """One wheel's closed loop: a commanded duty means a target speed
    (duty × max_rps); the output duty is that duty (the feed-forward) plus
    simple-pid's correction, and is always within -1..1.

    Anti-windup, three ways: the correction's limits are what is left of
    -1..1 after the feed-forward (simple-pid clamps its integral to them
    too, so it never asks for more than the motor can give); the integral
    gathers only near the target (INTEGRATE_WITHIN), so a jammed wheel or a
    start from rest does not wind it up, and the integral that was holding
    the speed against a load before a jam is still right when the jam
    clears; and a stop resets the loop.
    """

    def __init__(self, gains: Gains, counts_per_rev: int, window: float = 0.1) -> None:
        self.gains = gains
        self.meter = WheelSpeed(counts_per_rev, window)
        self.pid = PID(gains.kp, gains.ki, 0.0, sample_time=None)

    def step(self, now: float, dt: float, duty: float, count: int) -> float:
        """The duty to put on the wheel now, for a commanded `duty` and the
        wheel's encoder `count`, `dt` seconds after the last step."""
        speed = self.meter.update(now, count)
        if duty == 0.0:
            self.reset()
            return 0.0
        feed = max(-1.0, min(1.0, duty))
        if dt <= 0:  # no time has passed: nothing to correct yet
            return feed
        target = feed * self.gains.max_rps
        near = abs(target - speed) <= INTEGRATE_WITHIN * abs(target)
        self.pid.Ki = self.gains.ki if near else 0.0
        self.pid.setpoint = target
        self.pid.output_limits = (-1.0 - feed, 1.0 - feed)
        return max(-1.0, min(1.0, feed + self.pid(speed, dt=dt)))

    @property
    def speed(self) -> float:
        """The last measured speed, rev/s (signed: positive is forward)."""
        return self.meter.speed

    def reset(self) -> None:
        self.pid.reset()


#: The stall time when a drive has encoders and no `stall:` (docs/safety.md).
DEFAULT_STALL_AFTER = 0.5
#: A wheel's speed at full duty when `encoders:` does not say (`max_rps`):
#: low, so a guess too small makes the closed loop slower, never faster.
DEFAULT_MAX_RPS = 2.0
_GPIO_KEYS = {"a", "b", "counts_per_rev"}
_SERIAL_KEYS = {"port", "baud", "counts_per_rev"}


def _whole(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _wheel_problem(side: str, wheel: Any) -> str | None:
    if not isinstance(wheel, dict) or set(wheel) != _GPIO_KEYS:
        return f"{side}: must be {{a: PIN, b: PIN, counts_per_rev: N}}"
    for key in ("a", "b"):
        if not _whole(wheel[key], 0, 27):
            return f"{side}.{key}: must be a BCM GPIO number from 0 to 27, got {wheel[key]!r}"
    return None


def encoders_problem(value: Any) -> str | None:
    """What is wrong with a drive's `encoders:`, or None.  Two forms: a
    quadrature encoder per wheel on GPIO, `{left: {a, b, counts_per_rev},
    right: {...}}`, or a microcontroller's counts on a serial port,
    `{port, baud, counts_per_rev}`; either may add `max_rps`."""
    if not isinstance(value, dict):
        return (
            "must be {left: {a, b, counts_per_rev}, right: {...}} or {port, baud, counts_per_rev}"
        )
    value = dict(value)
    max_rps = value.pop("max_rps", DEFAULT_MAX_RPS)
    if (
        isinstance(max_rps, bool)
        or not isinstance(max_rps, int | float)
        or not 0.1 <= max_rps <= 100
    ):
        return f"max_rps: must be a number from 0.1 to 100 (rev/s at full duty), got {max_rps!r}"
    if set(value) == {"left", "right"}:
        wheels = (value["left"], value["right"])
        for side, wheel in zip(("left", "right"), wheels, strict=True):
            problem = _wheel_problem(side, wheel)
            if problem:
                return problem
        counts = [w["counts_per_rev"] for w in wheels]
    elif set(value) == _SERIAL_KEYS:
        if not isinstance(value["port"], str) or not value["port"]:
            return f"port: must be a device path, got {value['port']!r}"
        if not _whole(value["baud"], 50, 4_000_000):
            return f"baud: must be a whole number from 50 to 4000000, got {value['baud']!r}"
        counts = [value["counts_per_rev"]]
    else:
        return (
            "must be {left: {a, b, counts_per_rev}, right: {a, b, counts_per_rev}} (GPIO) "
            "or {port, baud, counts_per_rev} (serial), with an optional max_rps"
        )
    for count in counts:
        if not _whole(count, 1, 1_000_000):
            return f"counts_per_rev: must be a whole number from 1 to 1000000, got {count!r}"
    return None


def stall_problem(value: Any) -> str | None:
    """`stall: {after: S}`, S from 0.1 to 10 seconds."""
    if not isinstance(value, dict) or set(value) != {"after"}:
        return "must be {after: SECONDS}"
    after = value["after"]
    if isinstance(after, bool) or not isinstance(after, int | float) or not 0.1 <= after <= 10:
        return f"after: must be from 0.1 to 10 seconds, got {after!r}"
    return None


def counts_per_rev(encoders: dict[str, Any]) -> tuple[int, int]:
    """Each wheel's counts per revolution, from a checked `encoders:`."""
    if "left" in encoders:
        return encoders["left"]["counts_per_rev"], encoders["right"]["counts_per_rev"]
    return encoders["counts_per_rev"], encoders["counts_per_rev"]
