"""What the engine shows: the world model as the stream carries it, the
snapshot a new client starts from, and the health report.

Pure functions of the engine's state, called under its lock; the JSON
shapes of `worldmodel` data and of /healthz are written here and nowhere
else.
"""

from __future__ import annotations

from typing import Any

from anse_hw.model import Config
from anse_hw.operator import Operator
from anse_hw.worldmodel import WorldModel

__all__ = ["health", "snapshot_extras", "world_data"]


def world_data(
    world: WorldModel, operator: Operator, last_stop: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    """The world model as the stream shows it, with the operator's latch."""
    data = world.snapshot(now)
    data["estop_latched"] = operator.latched
    data["estop_circuit"] = {None: None, True: "open", False: "closed"}[operator.circuit_open]
    data["estop_durable"] = operator.durable
    data["last_stop"] = last_stop
    return data


def snapshot_extras(config: Config) -> dict[str, Any]:
    """What only the snapshot a new client gets carries: the reflexes, so a
    dashboard can draw the thresholds without a second request, and each
    actuator's kind and safe state."""
    units = {s.name: s.kind.unit for s in config.sensors}
    return {
        "reflexes": [
            {
                "name": r.name,
                "sensor": r.sensor,
                "actuator": r.actuators[0],
                "command": r.command,
                "below": r.below,
                "above": r.above,
                "condition": r.condition,
                "guard": r.guard,
                "sensors": sorted(r.sensors),
                "actuators": list(r.actuators),
                "for": r.when.hold,
                "parts": [leaf.text(units) for leaf in r.when.leaves],
            }
            for r in config.reflexes
        ],
        "estop_input": {"pin": config.estop.pin} if config.estop else None,
        "actuator_kinds": {
            a.name: {"type": a.type, "safe": a.safe_state} for a in config.actuators
        },
    }


def health(world: WorldModel, operator: Operator, now: float) -> dict[str, Any]:
    """The /healthz report: whether it is safe, and why not."""
    return {
        "safe": world.safe(),
        "sensors": {
            name: {
                "fresh": s.fresh(),
                "age_s": round(s.age(now), 3),
                "value": s.value,
                "type": s.kind.name,
                "unit": s.kind.unit,
                "watched": name in world.watched,
                "fault": s.fault,
                "invalid_readings": s.invalid,
            }
            for name, s in world.sensors.items()
        },
        "actuators": dict(world.actuators),
        "estop_latched": operator.latched,
        "estop_durable": operator.durable,
        "manual": sorted(operator.holds),
        "stale_watched": [
            n for n in world.watched if world.sensors[n].stale or world.sensors[n].fault
        ],
    }
