"""The world model: what the daemon believes about its surroundings.

Plain state, no threads and no I/O: the engine owns the lock and calls in.
`safe` and `clear_for` are where "when in doubt the motor stops" is decided:
a sensor with no fresh valid reading is doubt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from anse_hw.config import ReflexConfig
from drivers.base import STOPPED


@dataclass
class SensorState:
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
    def __init__(
        self,
        sensors: dict[str, float],
        actuators: Iterable[str],
        stop_reflexes: Iterable[ReflexConfig],
        now: float,
    ) -> None:
        self.sensors = {name: SensorState(max_age, now) for name, max_age in sensors.items()}
        self.actuators = dict.fromkeys(actuators, STOPPED)
        self.primary = next(iter(self.actuators), None)
        self.stop_reflexes = list(stop_reflexes)
        self.watched = {r.sensor for r in self.stop_reflexes}
        self.last_reflex: str | None = None
        self.total_events = 0

    def record(self, name: str, value: float, taken: float) -> None:
        state = self.sensors[name]
        state.value, state.last_valid, state.stale, state.old = value, taken, False, False

    def distance_cm(self) -> float | None:
        """The nearest fresh distance: the one that matters to a moving robot."""
        values = [s.value for s in self.sensors.values() if s.fresh()]
        return min(values) if values else None

    def _quiet(self, reflex: ReflexConfig) -> bool:
        """A stop reflex whose sensor is fresh and does not call for a stop."""
        state = self.sensors[reflex.sensor]
        return state.fresh() and not reflex.holds(state.value)

    def clear_for(self, actuator: str) -> bool:
        """True when every stop reflex guarding `actuator` is quiet."""
        return all(self._quiet(r) for r in self.stop_reflexes if r.actuator == actuator)

    def safe(self) -> bool:
        """Every stop reflex is quiet: no guarding sensor is silent or too close."""
        return all(self._quiet(r) for r in self.stop_reflexes)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The `worldmodel` event data: the seed's keys, then our additions."""
        return {
            "distance_cm": self.distance_cm(),
            "safe": self.safe(),
            "actuator_state": self.actuators.get(self.primary, STOPPED),
            "last_reflex": self.last_reflex,
            "total_events": self.total_events,
            "actuators": dict(self.actuators),
            "sensors": {
                name: {
                    "value": s.value,
                    "fresh": s.fresh(),
                    "age_ms": round(s.age(now) * 1000),
                    "fault": s.fault or ("stale" if s.stale else None),
                }
                for name, s in self.sensors.items()
            },
        }
