"""The operator's say over the actuators: the E-stop latch and manual holds.

A state machine with no lock, no events and no I/O, like the world model:
the engine calls in under its own lock and turns each decision into events
and pin changes.  What it decides:

- E-stop latches: nothing leaves its safe state until a reset.  A reset
  releases the latch and every hold, and moves nothing by itself.
- A manual command to the safe state always wins and holds until the
  operator commands again (or resets).  A manual command away from it is
  refused while latched or while a guard is not clear, and lasts only as
  long as heartbeats renew it.
- A guard beats a manual move: the hold is dropped and the operator must
  ask again.
"""

from __future__ import annotations

from dataclasses import dataclass

from anse_hw.errors import Refused
from anse_hw.kinds import ACTUATOR_KINDS

__all__ = ["Hold", "Operator"]


@dataclass
class Hold:
    """An operator's manual command on one actuator.  A hold away from the safe
    state lasts until `deadline` (renewed by each heartbeat); a hold in the
    safe state has none and lasts until the operator commands again or resets."""

    state: str
    deadline: float | None


class Operator:
    def __init__(self, latched: bool, hold_time: float) -> None:
        #: The E-stop latch: while set, nothing leaves its safe state.
        self.latched = latched
        #: Whether the latch as it is now is on disk (False: held in memory only).
        self.durable = True
        #: How long a manual move/on holds without a heartbeat.
        self.hold_time = hold_time
        self.holds: dict[str, Hold] = {}

    def keeps(self, actuator: str) -> bool:
        """A reflex may not move `actuator` out of its safe state: the latch
        is set, or the operator holds it."""
        return self.latched or actuator in self.holds

    def made_safe(self, actuator: str, target: str) -> None:
        """`actuator` is driven to its safe state `target` (by a guard, or a
        lapse): a manual hold away from it is void."""
        hold = self.holds.get(actuator)
        if hold is not None and hold.state != target:
            del self.holds[actuator]

    def estop(self) -> None:
        self.latched = True
        self.holds.clear()

    def reset(self) -> bool:
        """Release the latch and every hold; True if the latch was set."""
        was, self.latched = self.latched, False
        self.holds.clear()
        return was

    def command(
        self,
        name: str,
        kind: str,
        command: str | None,
        safe_state: str,
        clear: bool,
        now: float,
    ) -> tuple[str, bool]:
        """(target state, whether it is only a heartbeat of the hold already
        there) for `command` on actuator `name` of `kind`, or Refused.

        `clear`: no guard of the actuator stands in the way of leaving its
        safe state."""
        target = ACTUATOR_KINDS[kind].commands.get(command or "")
        if target is None:
            commands = " | ".join(ACTUATOR_KINDS[kind].commands)
            raise Refused(400, f"{name} is a {kind}: command must be {commands}")
        if target == safe_state:  # a manual stop always wins
            self.holds[name] = Hold(target, None)
            return target, False
        if self.latched:
            raise Refused(409, "the E-stop is latched: reset first")
        if not clear:
            raise Refused(409, f"{name} is guarded: a guarding sensor is not clear")
        hold = self.holds.get(name)
        if hold is not None and hold.state == target:
            hold.deadline = now + self.hold_time
            return target, True
        self.holds[name] = Hold(target, now + self.hold_time)
        return target, False

    def lapsed(self, now: float) -> list[tuple[str, Hold]]:
        """The manual moves whose heartbeats stopped, removed from the holds."""
        gone = [(name, h) for name, h in self.holds.items() if h.deadline is not None]
        gone = [(name, h) for name, h in gone if h.deadline <= now]
        for name, _ in gone:
            del self.holds[name]
        return gone
