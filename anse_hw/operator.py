"""The operator's say over the actuators: the E-stop latch and manual holds.

A state machine with no lock and no I/O, like the world model: the engine
calls in under its own lock and carries out each `Decision` (one reflex
event, the actuators to drive) on the reflexes' own path.  The rules:

- E-stop latches: every actuator goes to its safe state, and nothing
  leaves it until a reset.  A reset releases the latch and every hold, and
  moves nothing by itself.
- A manual command to the safe state always wins and holds until the
  operator commands again (or resets).  A manual command away from it is
  refused while latched or while a guard is not clear, and lasts only as
  long as heartbeats renew it; then the actuator goes back to safe.  An
  output configured `manual: latch` (no guard drives it) is the exception:
  switched on, it stays on until switched off, an E-stop or a reset.
- A guard beats a manual move: the hold is dropped and the operator must
  ask again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anse_hw import events
from anse_hw.errors import Refused
from anse_hw.kinds import ACTUATOR_KINDS, MOVING
from anse_hw.motion import Aim, Twist, aim_of, twist_problem

__all__ = [
    "COMMAND_REFLEX",
    "ESTOP_INPUT",
    "ESTOP_REFLEX",
    "RESTORED",
    "Decision",
    "Hold",
    "Operator",
]

log = logging.getLogger("anse_hw.engine")

ESTOP_REFLEX = "operator_estop"
COMMAND_REFLEX = "operator_command"
#: The cause of a latch by the hardwired E-stop circuit opening.
ESTOP_INPUT = "estop_input"

#: The cause of a latch the daemon started with (kept on disk from before).
RESTORED = "estop_restored"

#: The reply to the operator, made from the actuators' states once driven.
Reply = Callable[[dict[str, str]], dict[str, Any]]


@dataclass
class Hold:
    """An operator's manual command on one actuator.  A hold away from the safe
    state lasts until `deadline` (renewed by each heartbeat); a hold in the
    safe state has none and lasts until the operator commands again or resets."""

    state: str
    deadline: float | None
    #: A drive's `{linear, angular}`, as (linear, angular).
    twist: Twist | None = None
    #: A motor's move: (reverse, speed).
    how: Aim | None = None


@dataclass
class Decision:
    """What an operator action does, for the engine to carry out: the reflex
    event to send (`triggered` ones also become the last reflex), the
    actuators to drive to which state, and the reply."""

    event: dict[str, Any] | None
    drive: list[tuple[str, str]] = field(default_factory=list)
    reply: Reply = lambda states: {}


class Operator:
    def __init__(
        self,
        latched: bool,
        hold_time: float,
        kinds: dict[str, str],
        safe: dict[str, str],
        stays_on: frozenset[str] = frozenset(),
        refuse: Callable[[str, str], str | None] = lambda name, state: None,
    ) -> None:
        """`kinds` and `safe`: each actuator's kind and safe state, by name;
        `stays_on`: the outputs whose manual on needs no heartbeat;
        `refuse(name, state)`: why that actuator cannot take that state (a
        servo's angle beyond its travel), or None."""
        #: The E-stop latch: while set, nothing leaves its safe state.
        self.latched = latched
        #: What set the latch: its own cause, source and time (not the last
        #: actuator change, which may come later), None while released.
        self.latch: dict[str, str] | None = (
            _latch(RESTORED, "the state kept from before this start") if latched else None
        )
        #: Whether the latch as it is now is on disk (False: held in memory only).
        self.durable = True
        #: How long a manual move/on holds without a heartbeat.
        self.hold_time = hold_time
        self.holds: dict[str, Hold] = {}
        self.kinds = kinds
        self.safe = safe
        self.stays_on = stays_on
        self.refuse = refuse
        #: The hardwired E-stop circuit: open (True), closed (False), or
        #: None when there is none.  While it is open no reset is accepted.
        self.circuit_open: bool | None = None

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

    def estop(self, source: str, cause: str = ESTOP_REFLEX) -> Decision:
        self.latched = True
        self.latch = _latch(cause, source)
        self.holds.clear()
        log.warning("E-STOP from %s: every actuator in its safe state, latched", source)
        return Decision(
            events.reflex_data(cause, f"emergency stop from {source}", True),
            list(self.safe.items()),
            lambda states: {"latched": True, "actuators": dict(states)},
        )

    def reset(self, source: str) -> Decision:
        """Releases the latch and every manual hold; moves nothing by itself.
        Refused while the hardwired E-stop circuit is open: the button still
        pressed, or its wire cut."""
        if self.circuit_open:
            raise Refused(409, "the hardwired E-stop circuit is open: release the button first")
        was, self.latched = self.latched, False
        self.latch = None
        self.holds.clear()
        log.info("E-stop reset from %s%s", source, "" if was else " (was not latched)")
        return Decision(
            events.reflex_data(ESTOP_REFLEX, f"reset from {source}", False),
            reply=lambda states: {"latched": False, "actuators": dict(states)},
        )

    def command(
        self,
        name: str | None,
        command: str | dict | None,
        source: str,
        clear: Callable[[str], bool],
        now: float,
    ) -> Decision:
        """`command` on actuator `name`, or Refused with an HTTP status.  A
        drive also takes `{linear, angular}`: a move held like any other, whose
        new twist is a new command and whose same twist is a heartbeat.
        `clear(name)`: no guard of it stands in the way of leaving its safe state."""
        if name not in self.kinds:
            raise Refused(404, f"no actuator named {name!r}")
        kind = ACTUATOR_KINDS[self.kinds[name]]
        twist, how, target, text = None, None, None, command
        if isinstance(command, dict) and kind.steered:
            problem = twist_problem(command)
            if problem:
                raise Refused(400, f"{name}: the command {problem}")
            twist = (float(command["linear"]), float(command["angular"]))
            target, text = MOVING, f"linear {twist[0]:g} angular {twist[1]:g}"
        elif kind.aimed and command != "stop":
            aimed = aim_of(command)
            if isinstance(aimed, str):
                raise Refused(400, f"{name} is a motor: the command {aimed}, or stop")
            text, how = aimed
            target = MOVING
            if how[1] is not None:
                text = f"{text} at {how[1]:g}"
        else:
            target = kind.target(command)
        if target is None:
            raise Refused(400, f"{name} is a {kind.name}: command must be {kind.accepts}")
        problem = self.refuse(name, target)
        if problem:
            raise Refused(400, f"{name}: {problem}")
        if target == self.safe[name]:  # a manual stop always wins
            self.holds[name] = Hold(target, None)
        else:
            if self.latched:
                raise Refused(409, "the E-stop is latched: reset first")
            if not clear(name):
                raise Refused(409, f"{name} is guarded: a guarding sensor is not clear")
            hold = self.holds.get(name)
            deadline = None if name in self.stays_on else now + self.hold_time
            same = hold is not None and (hold.state, hold.twist, hold.how) == (target, twist, how)
            if same:  # a heartbeat, or again
                hold.deadline = deadline
                held = {"actuator": name, "state": target, "held_for_s": self.hold_time}
                if deadline is None:
                    held = {"actuator": name, "state": target, "stays": True}
                return Decision(None, reply=lambda states: held)
            self.holds[name] = Hold(target, deadline, twist, how)
        return Decision(
            events.reflex_data(COMMAND_REFLEX, f"{text} {name} from {source}", True),
            [(name, target)],
            lambda states: {"actuator": name, "state": states[name]},
        )

    def lapse(self, now: float) -> list[Decision]:
        """A manual move/on whose heartbeats stopped goes back to the safe state."""
        lapsed = [(n, h) for n, h in self.holds.items() if h.deadline is not None]
        decisions = []
        for name, hold in lapsed:
            if hold.deadline > now:
                continue
            del self.holds[name]
            safe = self.safe[name]
            text = f"{hold.state} {name}: no heartbeat, back to {safe}"
            decisions.append(
                Decision(events.reflex_data(COMMAND_REFLEX, text, False), [(name, safe)])
            )
            log.info("%s: manual %s lapsed without a heartbeat", name, hold.state)
        return decisions


def _latch(cause: str, source: str) -> dict[str, str]:
    return {"cause": cause, "source": source, "timestamp": events.timestamp()}
