"""docs/configuration.md, generated from the schema so it cannot drift:

    python -m anse_hw.config.reference > docs/configuration.md

Every key of every section and item, and every driver's own keys, with its
type, default, what it allows and its help, read from the same tables the
validator uses (anse_hw.model's fields, each driver's OPTIONS).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from anse_hw.config.schema import (
    ACTUATOR_COMMON,
    ESTOP_OPTIONS,
    FOXGLOVE_OPTIONS,
    GPIO_OPTIONS,
    MQTT_OPTIONS,
    RECORDING_OPTIONS,
    REFLEX_OPTIONS,
    SENSOR_COMMON,
    SERVER_OPTIONS,
    expected,
    options_of,
)
from anse_hw.drivers import registry
from anse_hw.kinds import ACTUATOR_KINDS, SENSOR_KINDS
from anse_hw.model import Config
from anse_hw.options import REQUIRED, Option

__all__ = ["COMMAND", "reference"]

COMMAND = "python -m anse_hw.config.reference > docs/configuration.md"

SECTIONS = (
    ("server", "", SERVER_OPTIONS),
    ("gpio", "", GPIO_OPTIONS),
    ("estop", "A hardwired E-stop is on when the section is there.", ESTOP_OPTIONS),
    ("mqtt", "MQTT is on when the section is there (`mqtt: {}` for every default).", MQTT_OPTIONS),
    ("recording", "Recording is on when the section is there.", RECORDING_OPTIONS),
    (
        "foxglove",
        "The live Foxglove view is on when the section is there (`foxglove: {}` for every "
        "default); it needs the `foxglove` extra.",
        FOXGLOVE_OPTIONS,
    ),
    ("sensors[]", "Each sensor, plus the keys of its driver (below).", SENSOR_COMMON),
    ("actuators[]", "Each actuator, plus the keys of its driver (below).", ACTUATOR_COMMON),
    (
        "reflexes[]",
        "Each reflex: sensor with exactly one of below, above or active, or when:.",
        REFLEX_OPTIONS,
    ),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(value: Any) -> str:
    if value is REQUIRED:
        return "**required**"
    if value is None:
        return ""
    if dataclasses.is_dataclass(value):
        return "its keys' defaults"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def _table(options: tuple[Option, ...]) -> list[str]:
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for o in options:
        allows = getattr(o.check, "allows", "")
        cells = (f"`{o.key}`", expected(o.kind), _default(o.default), allows, o.help)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return rows


def _drivers(title: str, drivers: tuple[type, ...]) -> list[str]:
    out = []
    for cls in drivers:
        kinds = ", ".join(cls.KINDS)
        out += ["", f"### {title} `driver: {cls.DRIVER}` (type: {kinds})", ""]
        out += _table(cls.OPTIONS) if cls.OPTIONS else ["No keys of its own."]
    return out


def _kinds() -> list[str]:
    """The kinds table (anse_hw.kinds): what `type:` a sensor or actuator may
    have, the unit and range a reading must fall in, and the commands."""
    out = [
        "",
        "## Kinds",
        "",
        "A sensor's `type`: its unit on the wire, and the range outside which a",
        "reading is not a reading (docs/safety.md S3) and a threshold is a config error.",
        "",
        "| type | unit | range | reflex condition |",
        "|---|---|---|---|",
    ]
    for k in SENSOR_KINDS.values():
        test = "`active: true\\|false`" if k.binary else "`below` / `above`"
        out.append(f"| `{k.name}` | {k.unit or '—'} | {k.low:g} to {k.high:g} | {test} |")
    out += [
        "",
        "An actuator's `type`: the commands a reflex or an operator may give, the",
        "state each drives it to, and the `safe:` choices (the first is the default).",
        "A reflex that drives an actuator to its safe state is a guard.",
        "",
        "| type | commands → state | `safe:` choices |",
        "|---|---|---|",
    ]
    for a in ACTUATOR_KINDS.values():
        if a.value is not None:
            commands = f"a number or `{{{a.value}: N}}` → that {a.value}"
            choices = f"an {a.value} (required)"
        else:
            commands = ", ".join(f"`{c}` → {state}" for c, state in a.commands.items())
            choices = ", ".join(f"`{c}`" for c in a.safe)
        out.append(f"| `{a.name}` | {commands} | {choices} |")
    return out


def reference() -> str:
    """The whole of docs/configuration.md."""
    out = [
        "# Configuration reference",
        "",
        f"Generated from the schema by `{COMMAND}`; do not edit by hand (a test",
        "compares this file with what the command prints).  A key that is absent, or",
        "`null`, takes its default; an empty default means none, or one worked out",
        "as its text says.",
        "",
        "## Top level",
        "",
        *_table(options_of(Config)),
    ]
    for name, note, options in SECTIONS:
        out += ["", f"## `{name}`", ""] + ([note, ""] if note else []) + _table(options)
    out += _kinds()
    out += ["", "## The drivers' own keys"]
    out += _drivers("Sensor", registry.SENSOR_DRIVERS)
    out += _drivers("Actuator", registry.ACTUATOR_DRIVERS)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
