"""What each kind of sensor measures and each kind of actuator does (SPEC §12, §16).

Kinds are data, not `if kind ==` branches: the config validates thresholds
against `SensorKind.low`/`high`, the engine rejects readings outside them
(S3), the wire carries `unit`, and condition text is written here.  A new
kind is a new row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SensorKind:
    name: str
    unit: str
    #: Values outside [low, high] cannot be measured by any device of this kind:
    #: such a reading is invalid (S3) and such a threshold is a config error.
    low: float
    high: float

    def plausible(self, value: float) -> bool:
        return self.low <= value <= self.high

    def condition(self, sensor: str, op: str, threshold: float) -> str:
        """Human text for the wire, as the seed writes it: "distance < 10cm"."""
        return f"{self.name} {op} {threshold:g}{self.unit}"


SENSOR_KINDS: dict[str, SensorKind] = {
    # 100 m: beyond every ultrasonic and serial lidar we drive (TFmini: 12 m).
    "distance": SensorKind("distance", "cm", 0.0, 10_000.0),
}
