"""A simulated wheel: duty in, speed and encoder counts out, on numbers alone.

What `--sim`'s base and the tests drive instead of a motor: a first-order
lag (the wheel's inertia: it reaches 63 % of a new speed in `tau` seconds),
a `load` that takes a fraction of its speed away (a slope, a carpet), and a
`jam` that stops it dead so its encoder stops counting.  The caller steps it
with the time that passed; nothing here reads a clock.
"""

from __future__ import annotations

import math

__all__ = ["WheelPlant"]


class WheelPlant:
    """One wheel and its encoder.  `duty` is signed, -1..1 (positive:
    forward); at full duty and no load the wheel turns `max_rps` rev/s."""

    def __init__(self, max_rps: float = 2.0, tau: float = 0.15, counts_per_rev: int = 360) -> None:
        self.max_rps = max_rps
        self.tau = tau
        self.counts_per_rev = counts_per_rev
        self.duty = 0.0
        self.load = 0.0
        self.jammed = False
        self.speed = 0.0  # rev/s
        self._revs = 0.0

    def step(self, dt: float) -> None:
        """Advance the wheel by `dt` seconds at the duty and load it has now."""
        if self.jammed:
            self.speed = 0.0
            return
        target = self.duty * self.max_rps * (1.0 - self.load)
        self.speed += (target - self.speed) * (1.0 - math.exp(-dt / self.tau))
        self._revs += self.speed * dt

    @property
    def counts(self) -> int:
        """The encoder's count: whole counts turned so far, signed."""
        return math.floor(self._revs * self.counts_per_rev)
