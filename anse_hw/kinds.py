"""What each kind of sensor measures and each kind of actuator does
(docs/configuration.md, "Kinds"; docs/architecture.md).

Kinds are data, not `if kind ==` branches: the config validates thresholds
against `SensorKind.low`/`high` and commands against `ActuatorKind.commands`,
the engine rejects readings outside the range (S3) and drives actuators to
the states named here, the wire carries `unit`, the sim plays `sweep`, and
condition text is written here.  A new kind is a new row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


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

    def threshold_problem(self, test: str, threshold: float) -> str | None:
        """Why a `below`/`above` threshold can never mean anything, or None.

        Outside the range no reading can be valid, so the reflex would
        either never fire or fire on every reading: both are a typo, and a
        guard that never fires is a motor that never stops."""
        if self.low < threshold < self.high:
            return None
        never = (test == "below") == (threshold <= self.low)
        return (
            f"{threshold:g} is outside what a {self.name} sensor can read "
            f"({self.low:g} to {self.high:g} {self.unit}), so the reflex would "
            f"{'never' if never else 'always'} fire"
        )

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
    # A battery or supply rail: an INA219 measures up to 26 V, a 48 V pack is the most we expect.
    "voltage": SensorKind("voltage", "V", -100.0, 100.0, (12.6, 11.2, 0.2)),
    # Negative while charging; an INA219 with a 0.1 Ω shunt reads up to ±3.2 A.
    "current": SensorKind("current", "A", -100.0, 100.0, (0.2, 2.6, 0.3)),
    # Sea level is 1013 hPa; a BME280 reads 300 to 1100.
    "pressure": SensorKind("pressure", "hPa", 0.0, 2000.0, (1013.0, 980.0, 4.0)),
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
    #: A kind whose state is a number the command carries (a servo's angle):
    #: the key of the command's mapping form (`{angle: 45}`).  Such a kind
    #: names no commands, and its `safe:` is such a number, with no default.
    value: str | None = None
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

    @property
    def accepts(self) -> str:
        """What its commands look like, for a refusal."""
        if self.value is not None:
            return f"a number or {{{self.value}: N}}"
        return " | ".join([*self.commands, *(["{linear, angular}"] * self.steered)])

    def target(self, command: Any) -> str | None:
        """The state `command` drives to, or None when it is not one of
        this kind's commands.  A number kind takes the number, as YAML, JSON
        or text ("45": the API's and MQTT's commands are strings)."""
        if self.value is None:
            return self.commands.get(command) if isinstance(command, str) else None
        if isinstance(command, dict) and list(command) == [self.value]:
            command = command[self.value]
        if isinstance(command, str):
            try:
                command = float(command)
            except ValueError:
                return None
        if isinstance(command, bool) or not isinstance(command, int | float):
            return None
        return angle_state(command) if math.isfinite(command) else None

    def safe_state(self, choice: Any) -> str | None:
        """The state a `safe:` choice gives (None: not a choice of this kind)."""
        if self.value is not None:
            return self.target(choice)
        if choice is None:
            return next(iter(self.safe.values()))
        return self.safe.get(choice) if isinstance(choice, str) else None


def angle_state(angle: float) -> str:
    """A servo's state: its angle in degrees as text ("90", "22.5"), one
    spelling per angle so that states compare as strings."""
    return f"{float(angle):g}"


def angle_of(state: str) -> float:
    return float(state)


#: The reflex command that latches the E-stop (every actuator to its safe
#: state until an operator resets it), whatever the actuator's kind.
ESTOP = "estop"

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
    # A hobby servo: the state is its angle; `safe:` is the angle it goes to.
    "servo": ActuatorKind("servo", {}, value="angle"),
    # Two motors as one differential base: MOVING while a wheel has a duty.
    "drive": ActuatorKind("drive", {"stop": STOPPED}, {"stop": STOPPED}, steered=True),
}
