"""The YAML schema, derived from the model, and the generic validator.

The option tables here are not written by hand: `options_of` reads them off
the fields of anse_hw.model's dataclasses (help, check, default), so a key's
default and bounds live in one place.  `Checker` walks parsed YAML against
such a table and collects every problem with its file and line, so a user
fixes a file in one pass.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

from anse_hw.drivers import registry
from anse_hw.model import (
    ActuatorConfig,
    Config,
    EstopConfig,
    FoxgloveConfig,
    GpioConfig,
    I2cConfig,
    MqttConfig,
    RecordingConfig,
    ReflexConfig,
    SensorConfig,
    ServerConfig,
    located,
)
from anse_hw.options import REQUIRED, Option

__all__ = [
    "ACTIVE",
    "ACTUATOR_COMMON",
    "ESTOP_OPTIONS",
    "FOXGLOVE_OPTIONS",
    "GPIO_OPTIONS",
    "I2C_OPTIONS",
    "MQTT_OPTIONS",
    "RECORDING_OPTIONS",
    "REFLEX_OPTIONS",
    "SENSOR_COMMON",
    "SERVER_OPTIONS",
    "TOP_LEVEL",
    "Checker",
    "expected",
    "nearest",
    "options_of",
    "shown",
    "unknown",
]


def _yaml_kind(hint: Any) -> type | tuple[type, ...]:
    """The YAML type of a field: `float` takes integers too, a tuple is
    written as a list, a dataclass as a mapping, and `X | None` is X."""
    if isinstance(hint, types.UnionType):
        (hint,) = (a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint) or hint
    if dataclasses.is_dataclass(origin):
        return dict
    return {float: (int, float), tuple: list}.get(origin, origin)


def options_of(cls: type, **help: str) -> tuple[Option, ...]:
    """The YAML keys of a model class, from the fields that `setting` made;
    `help` replaces a key's help text (the driver list, known only here)."""
    hints = typing.get_type_hints(cls)
    return tuple(
        Option(
            f.metadata["key"] or f.name,
            f.metadata["yaml_kind"] or _yaml_kind(hints[f.name]),
            f.metadata["yaml_default"],
            help.get(f.name, f.metadata["help"]),
            f.metadata["check"],
            null_is_off=f.metadata["null_is_off"],
        )
        for f in dataclasses.fields(cls)
        if "help" in f.metadata
    )


SERVER_OPTIONS = options_of(ServerConfig)
GPIO_OPTIONS = options_of(GpioConfig)
I2C_OPTIONS = options_of(I2cConfig)
ESTOP_OPTIONS = options_of(EstopConfig)
MQTT_OPTIONS = options_of(MqttConfig)
RECORDING_OPTIONS = options_of(RecordingConfig)
FOXGLOVE_OPTIONS = options_of(FoxgloveConfig)
#: Keys whose values are structures the core's own parsers check (anse_hw.filters,
#: anse_hw.conditions): keys without a field of the same shape.
FILTERS = Option(
    "filters",
    list,
    None,
    "applied in order to every valid reading: median: N, max_jump: X, ema: w, "
    "calibrate: {scale, offset}; binary sensors: debounce: seconds",
)
SENSOR_COMMON = (
    *options_of(SensorConfig, driver=" | ".join(registry.names(registry.SENSOR_DRIVERS))),
    FILTERS,
)
ACTUATOR_COMMON = options_of(
    ActuatorConfig, driver=" | ".join(registry.names(registry.ACTUATOR_DRIVERS))
)
#: A binary sensor's reflex takes `active:`, which becomes a threshold
#: between 0 and 1 (below/above), so it is a key without a field.
ACTIVE = Option("active", bool, None, "binary sensors: fires when the sensor is active (or not)")
WHEN = Option(
    "when",
    dict,
    None,
    "instead of sensor/below/above/active: all: or any: (nestable) of "
    "{sensor, below | above | active | rate_below | rate_above [, rate_window]}",
)
HOLD = Option("for", (int, float), None, "seconds the condition must hold before it fires")
ACTUATORS = Option("actuators", list, None, "instead of actuator: several, one command for all")
#: A drive's reflex command may be a mapping ({linear, angular}, {limit: ...}),
#: which items.reflex reads into the config's twist or limit.
REFLEX_OPTIONS = (
    *options_of(ReflexConfig),
    ACTIVE,
    WHEN,
    HOLD,
    ACTUATORS,
)
TOP_LEVEL = tuple(o.key for o in options_of(Config))

_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def expected(kind: type | tuple[type, ...]) -> str:
    """'an integer', 'a number', 'true or false': a YAML type as a message says it."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _type_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def nearest(word: str, choices: list[str]) -> str | None:
    """The closest choice to a misspelt word (difflib is loaded only for a mistake)."""
    import difflib

    hint = difflib.get_close_matches(word, choices, n=1)
    return hint[0] if hint else None


def unknown(key: Any, known: Iterable[str]) -> str:
    """The unknown-key message: the nearest valid key, or the list when none is near."""
    known = list(known)
    hint = nearest(str(key), known)
    tip = f"did you mean '{hint}'?" if hint else f"expected one of: {', '.join(known)}"
    return f"unknown key '{key}'; {tip}"


def shown(value: Any) -> str:
    """A value as a message quotes it: a 300-character host is cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


class Checker:
    """Walks the parsed YAML, collecting problems with their line numbers."""

    def __init__(self, source: str, lines: dict[tuple, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[str] = []

    def problem(self, path: tuple, message: str) -> None:
        self.problems.append(located(self.source, self.lines, path, message))

    def mapping(
        self, value: Any, path: tuple, options: tuple[Option, ...], extra: tuple[Option, ...] = ()
    ) -> dict[str, Any] | None:
        """Each known key's value (its default when absent), every unknown key reported."""
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of keys, got {type(value).__name__}")
            return None
        known = {o.key: o for o in (*options, *extra)}
        for key in value:
            if key not in known:
                self.problem((*path, key), unknown(key, known))
        return {key: self._value(value, path, option) for key, option in known.items()}

    def _value(self, value: dict, path: tuple, option: Option) -> Any:
        key = option.key
        if key in value and value[key] is None and option.null_is_off:
            return None
        if key not in value or value[key] is None:
            if option.default is REQUIRED:
                self.problem(path, f"missing required key '{key}' ({option.help})")
                return None
            return option.default
        item = value[key]
        if not _type_ok(item, option.kind):
            self.problem(
                (*path, key), f"expected {expected(option.kind)}, got {shown(item)} ({option.help})"
            )
            return None
        problem = option.check(item) if option.check else None
        if problem:
            self.problem((*path, key), f"{shown(item)} {problem}")
        return float(item) if option.kind == (int, float) else item

    def section(self, data: dict, key: str, options: tuple[Option, ...]) -> dict[str, Any] | None:
        """A top-level mapping; absent or null is every default.  Anything
        else that is not a mapping (`mqtt: []`, `server: ''`) is an error,
        never read as "the defaults" (which for mqtt would turn it on)."""
        value = data.get(key)
        return self.mapping({} if value is None else value, (key,), options)

    def items(self, data: dict, key: str) -> list[tuple[tuple, Any]]:
        """The entries of a top-level list, each with its YAML path."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem((key,), f"expected a list, got {type(value).__name__}")
            return []
        return [((key, i), item) for i, item in enumerate(value)]
