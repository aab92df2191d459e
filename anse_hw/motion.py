"""A differential base on numbers alone: mixing, the speed cap, the
acceleration ramp and the forward limit (docs/safety.md M1); and a motor's
move with its direction and speed.

A base is commanded as a twist, `(linear, angular)` each in -1..1: linear
forward positive, angular counter-clockwise (to the left) positive, as ROS
has it.  Each wheel gets a signed duty in -1..1 (positive: forward).  No
pins, no clock and no lock here: the engine owns those and calls in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AIMED",
    "ZERO",
    "Aim",
    "Base",
    "Ramp",
    "Twist",
    "Wheels",
    "aim_of",
    "cap_forward",
    "limit_cap",
    "mix",
    "twist_problem",
]

#: (linear, angular), each -1..1.
Twist = tuple[float, float]
#: (left, right) signed duties, each -1..1.
Wheels = tuple[float, float]
ZERO: Twist = (0.0, 0.0)
#: A motor's move: (reverse, speed): against its configured direction or
#: not, at a speed 0..1 (None: its configured `speed`).
Aim = tuple[bool, float | None]
#: The commands that move a motor, and whether each reverses it.
AIMED = {"move": False, "reverse": True}


def aim_of(command: object) -> tuple[str, Aim] | str:
    """A motor's move, `move` | `reverse` | `{move: {speed: S}}` |
    `{reverse: {speed: S}}`, as (command, aim); or what is wrong with it."""
    if isinstance(command, str) and command in AIMED:
        return command, (AIMED[command], None)
    if isinstance(command, dict) and len(command) == 1:
        ((name, args),) = command.items()
        if name in AIMED and isinstance(args, dict) and set(args) == {"speed"}:
            speed = args["speed"]
            if isinstance(speed, bool) or not isinstance(speed, (int, float)):
                return f"speed must be a number from 0 to 1, got {speed!r}"
            if not 0.0 <= speed <= 1.0:  # NaN fails this too
                return f"speed must be from 0 to 1, got {speed!r}"
            return name, (AIMED[name], float(speed))
    return "must be move | reverse | {move: {speed: 0..1}} | {reverse: {speed: 0..1}}"


def twist_problem(value: object) -> str | None:
    """What is wrong with a `{linear, angular}` command, or None: both keys,
    nothing else, each a number from -1 to 1."""
    if not isinstance(value, dict) or set(value) != {"linear", "angular"}:
        return "must be {linear: -1..1, angular: -1..1} (both keys, nothing else)"
    for key in ("linear", "angular"):
        number = value[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return f"{key} must be a number from -1 to 1, got {number!r}"
        if not -1.0 <= number <= 1.0:  # NaN fails this too
            return f"{key} must be from -1 to 1, got {number!r}"
    return None


def mix(twist: Twist, max_speed: float) -> Wheels:
    """Wheel duties for a twist: left = linear - angular, right = linear +
    angular.  A sum beyond 1 scales both wheels down by the same factor, so
    the ratio between them, the curve the base drives, is kept; then
    `max_speed` scales both (full forward is `max_speed` on each wheel)."""
    linear, angular = twist
    left, right = linear - angular, linear + angular
    over = max(1.0, abs(left), abs(right))
    return (left / over * max_speed, right / over * max_speed)


def cap_forward(twist: Twist, cap: float) -> Twist:
    """Forward speed at most `cap` (0..1); reverse and turning untouched: a
    base that must slow near what is ahead of it can always back away."""
    linear, angular = twist
    return (min(linear, cap), angular) if linear > 0 else twist


def limit_cap(distance: float | None, full_at: float, zero_at: float) -> float:
    """The forward cap a distance allows: 1 at `full_at` and beyond, 0 at
    `zero_at` and nearer, in proportion between.  No reading (None: stale,
    faulted, not yet read) allows nothing: when in doubt, no forward."""
    if distance is None or distance <= zero_at:
        return 0.0
    if distance >= full_at:
        return 1.0
    return (distance - zero_at) / (full_at - zero_at)


def _toward(current: float, target: float, step: float) -> float:
    """One wheel's next duty: a slower duty, zero or a change of direction
    is taken at once (to zero first, when reversing); only speeding up in
    the same direction waits for the ramp."""
    if target == 0 or current * target < 0:
        current = 0.0
    if abs(target) <= abs(current):
        return target
    grown = abs(current) + step
    return target if grown >= abs(target) else (grown if target > 0 else -grown)


@dataclass
class Ramp:
    """The acceleration limit: each wheel's duty grows by at most `accel` per
    second; slowing down and stopping are never ramped (a stop that waits
    for a ramp is not a stop)."""

    accel: float
    target: Wheels = ZERO
    current: Wheels = ZERO
    _since: float = field(default=0.0, repr=False)

    def aim(self, target: Wheels, now: float) -> Wheels:
        """A new target: what slows is applied at once; returns the duties now."""
        self.step(now)
        self.target = target
        self.current = (
            _toward(self.current[0], target[0], 0.0),
            _toward(self.current[1], target[1], 0.0),
        )
        return self.current

    def step(self, now: float) -> Wheels:
        """The duties at `now`, ramped from the last step towards the target."""
        grown = max(0.0, now - self._since) * self.accel
        self._since = now
        self.current = (
            _toward(self.current[0], self.target[0], grown),
            _toward(self.current[1], self.target[1], grown),
        )
        return self.current

    def halt(self, now: float) -> None:
        """Stop at once: target and duties zero."""
        self.target = self.current = ZERO
        self._since = now

    @property
    def ramping(self) -> bool:
        return self.current != self.target


@dataclass
class Base:
    """What the engine keeps for one drive besides its driver."""

    max_speed: float
    ramp: Ramp
    #: The twist the last cruise reflex moved it at (None: no cruise since the last stop).
    cruise: Twist | None = None
    #: Each of its limits' forward cap, by limit name; a limit that has not
    #: read yet allows nothing.
    caps: dict[str, float] = field(default_factory=dict)
    #: The twist it is driven at, after its limits: what the wire shows.
    twist: Twist = ZERO

    def cap(self) -> float:
        """The lowest of its limits (1 without any)."""
        return min(self.caps.values(), default=1.0)
