"""The world model: what the daemon believes about its surroundings.

Plain state, no threads and no I/O: the engine owns the lock and calls in.
`safe` and `clear_for` are where "when in doubt, the safe state" is decided:
a guarding sensor with no fresh valid reading is doubt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anse_hw.conditions import Verdict
from anse_hw.kinds import SensorKind
from anse_hw.model import Config, ReflexConfig


@dataclass
class SensorState:
    kind: SensorKind
    max_age: float
    since: float  # when we started waiting for a reading (startup or recovery)
    value: float | None = None
    last_valid: float | None = None
    stale: bool = False
    fault: str | None = None
    invalid: int = 0  # readings rejected (S3), for health and the dashboard
    old: bool = False  # the latest valid reading was too old to use

    def fresh(self) -> bool:
        return self.value is not None and not self.stale and self.fault is None

    def age(self, now: float) -> float:
        return now - (self.last_valid if self.last_valid is not None else self.since)


class WorldModel:
    def __init__(self, config: Config, now: float) -> None:
        self.sensors = {s.name: SensorState(s.kind, s.max_age, now) for s in config.sensors}
        #: Every actuator starts in its safe state (S1).
        self.actuators = {a.name: a.safe_state for a in config.actuators}
        self.primary = next(iter(self.actuators), None)
        self.guards = [r for r in config.reflexes if r.guard]
        self.watched = config.watched_sensors()
        #: Each guard's resume reflexes on a sensor and an actuator it has: its hysteresis.
        self.resumes = {
            g.name: [
                r
                for r in config.reflexes
                if not r.guard and r.sensors & g.sensors and set(r.actuators) & set(g.actuators)
            ]
            for g in self.guards
        }
        #: Each reflex's latest verdict on the filtered readings (the engine sets them).
        self.verdicts: dict[str, Verdict] = {}
        self.last_reflex: str | None = None
        self.total_events = 0

    def record(self, name: str, value: float, taken: float) -> None:
        state = self.sensors[name]
        state.value, state.last_valid, state.stale, state.old = value, taken, False, False

    def distance_cm(self) -> float | None:
        """The nearest fresh distance: the one that matters to a moving robot."""
        values = [s.value for s in self.sensors.values() if s.kind.name == "distance" and s.fresh()]
        return min(values) if values else None

    def _quiet(self, guard: ReflexConfig) -> bool:
        """A guard whose sensors are all fresh and whose condition is False:
        True, on its way to its for:, or unknown (a rate without two readings
        yet) is doubt."""
        verdict = self.verdicts.get(guard.name)
        return (
            all(self.sensors[s].fresh() for s in guard.sensors)
            and verdict is not None
            and verdict.state is False
        )

    def _holds(self, reflex: ReflexConfig) -> bool:
        verdict = self.verdicts.get(reflex.name)
        return verdict is not None and verdict.state is True

    def _clear(self, guard: ReflexConfig) -> bool:
        """Quiet, and past the hysteresis band: a guard with a resume reflex on
        the same sensor and actuator is clear only where that reflex holds (a
        front sensor at 12 cm, between `below: 10` and `above: 15`, keeps the
        motor stopped even when another sensor says go)."""
        if not self._quiet(guard):
            return False
        resumes = self.resumes[guard.name]
        return not resumes or any(self._holds(r) for r in resumes)

    def clear_for(self, actuator: str) -> bool:
        """True when every guard of `actuator` is clear: it may leave its safe state."""
        return all(self._clear(g) for g in self.guards if actuator in g.actuators)

    def quiet_for(self, actuator: str) -> bool:
        """True when no guard of `actuator` calls for its safe state or is in
        doubt: what an operator's drive needs (it may drive in a guard's
        hysteresis band, which only keeps the reflexes from flapping)."""
        return all(self._quiet(g) for g in self.guards if actuator in g.actuators)

    def safe(self) -> bool:
        """Every guard is quiet: no guarding sensor is silent or calling for the safe state."""
        return all(self._quiet(g) for g in self.guards)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The `worldmodel` event data: the seed's keys, then our additions."""
        return {
            "distance_cm": self.distance_cm(),
            "safe": self.safe(),
            "actuator_state": self.actuators.get(self.primary, "STOPPED"),
            "last_reflex": self.last_reflex,
            "total_events": self.total_events,
            "actuators": dict(self.actuators),
            "sensors": {
                name: {
                    "value": s.value,
                    "fresh": s.fresh(),
                    "age_ms": round(s.age(now) * 1000),
                    "fault": s.fault or ("stale" if s.stale else None),
                    "type": s.kind.name,
                    "unit": s.kind.unit,
                }
                for name, s in self.sensors.items()
            },
            "guards": {g.name: {"clear": self._clear(g)} for g in self.guards},
            "verdicts": {
                name: {
                    "holds": v.state,
                    "parts": list(v.leaves),
                    "for_progress": round(v.progress, 3),
                }
                for name, v in self.verdicts.items()
            },
        }
