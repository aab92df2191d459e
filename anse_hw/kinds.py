"""What each kind of sensor measures and each kind of actuator does
(docs/configuration.md, "Kinds"; docs/architecture.md).

Kinds are data, not `if kind ==` branches: the config validates thresholds
against `SensorKind.low`/`high` and commands against `ActuatorKind.commands`,
the engine rejects readings outside the range (S3) and drives actuators to
the states named here, the wire carries `unit`, the sim plays `sweep`, and
condition text is written here.  A new kind is a new row.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SensorKind:
    name: str
    unit: str  # on the wire as sensor.data.unit; "" for binary
    #: Values outside [low, high] cannot be measured by any device of this kind:
    #: such a reading is invalid (S3) and such a threshold is a config error.
    low: float
    high: float
    #: The sim's `seed` profile: from `start` towards `end` in `step`s over 8
    #: readings, then back (distance: the seed's 50 → 5 → 50 cm).
    sweep: tuple[float, float, float]
    #: Binary sensors read 1 (active) or 0 and take `active: true|false` reflexes.
    binary: bool = False

    def plausible(self, value: float) -> bool:
        return self.low <= value <= self.high

    def condition(self, sensor: str, op: str, threshold: float) -> str:
        """Human text for the wire, as the seed writes it: "distance < 10cm"."""
        if self.binary:
            return f"{sensor} {'active' if op == '>' else 'inactive'}"
        return f"{self.name} {op} {threshold:g}{self.unit}"


SENSOR_KINDS: dict[str, SensorKind] = {
    # 100 m: beyond every ultrasonic and serial lidar we drive (TFmini: 12 m).
    "distance": SensorKind("distance", "cm", 0.0, 10_000.0, (50.0, 5.0, 5.5)),
    # From liquid nitrogen's neighbourhood to a thermocouple in a kiln.
    "temperature": SensorKind("temperature", "°C", -100.0, 1500.0, (30.0, 66.0, 4.5)),
    "humidity": SensorKind("humidity", "%", 0.0, 100.0, (40.0, 88.0, 6.0)),
    "binary": SensorKind("binary", "", 0.0, 1.0, (0.0, 1.0, 1.0), binary=True),
}
#: A binary reading is active at or above this (readings are 0 or 1).
BINARY_THRESHOLD = 0.5


@dataclass(frozen=True)
class ActuatorKind:
    name: str
    #: Reflex command → the state it drives the actuator to.
    commands: dict[str, str]
    #: `safe:` choices → state; the first is the default.  A reflex that drives
    #: the actuator to its safe state makes its sensor a guard (docs/configuration.md, "Kinds").
    safe: dict[str, str] = field(default_factory=dict)
    #: It is steered: besides its commands it takes a `{linear, angular}` twist
    #: (which moves it) and reflexes may `limit` it (anse_hw.motion).
    steered: bool = False
    #: It moves either way at a speed: its `move` and `reverse` take
    #: `{speed: 0..1}` (anse_hw.motion.aim_of).
    aimed: bool = False

    @property
    def states(self) -> tuple[str, ...]:
        """Every state it can be in: its commands', and MOVING for a steered one."""
        return tuple(dict.fromkeys([*self.commands.values(), *[MOVING] * self.steered]))

    def safe_state(self, choice: str | None) -> str:
        return self.safe[choice] if choice is not None else next(iter(self.safe.values()))


MOVING, STOPPED = "MOVING", "STOPPED"
ON, OFF = "ON", "OFF"

ACTUATOR_KINDS: dict[str, ActuatorKind] = {
    "motor": ActuatorKind(
        "motor",
        {"stop": STOPPED, "move": MOVING, "reverse": MOVING},
        {"stop": STOPPED},
        aimed=True,
    ),
    # Relay, LED, fan, buzzer.  A fan that must run when in doubt is `safe: on`.
    "output": ActuatorKind("output", {"off": OFF, "on": ON}, {"off": OFF, "on": ON}),
    # Two motors as one differential base: MOVING while a wheel has a duty.
    "drive": ActuatorKind("drive", {"stop": STOPPED}, {"stop": STOPPED}, steered=True),
}
