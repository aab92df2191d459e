"""What `--safe-stop` can still use from a config file that may be broken.

The safe stop must put every actuator it can find in its safe state, so it
cannot refuse a file for a typo in a reflex the way the daemon does: each
actuator is taken on its own, and a YAML syntax error in one top-level
section does not hide the actuators in another.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from anse_hw.config import items, yamlfile
from anse_hw.config.build import read, robot_id, state_dir, yaml_problem
from anse_hw.config.schema import GPIO_OPTIONS, I2C_OPTIONS, Checker
from anse_hw.errors import ConfigError
from anse_hw.model import ActuatorConfig, GpioConfig, I2cConfig

__all__ = ["Salvage", "salvage", "salvage_file"]


@dataclass(frozen=True)
class Salvage:
    """What `--safe-stop` can still use from a file that may be broken: the
    actuators that are valid on their own, and the pin factory to drive them."""

    source: str
    gpio: GpioConfig
    actuators: tuple[ActuatorConfig, ...]
    state_dir: str | None
    problems: list[str]
    robot_id: str | None = None
    #: The bus of its servo boards.
    i2c: I2cConfig = dataclasses.field(default_factory=I2cConfig)


def salvage(data: Any, source: str, lines: dict[tuple, int] | None = None) -> Salvage:
    """Each actuator on its own: one broken item, or a typo in a reflex, costs
    nothing else.  A broken gpio section falls back to gpiozero's own choice."""
    check = Checker(source, lines or {})
    if not isinstance(data, dict):
        check.problem((), "expected a mapping with gpio and actuators")
        return Salvage(source, GpioConfig(), (), None, check.problems)
    before = len(check.problems)
    gpio = check.mapping(data.get("gpio") or {}, ("gpio",), GPIO_OPTIONS)
    usable_gpio = GpioConfig(**gpio) if gpio and len(check.problems) == before else GpioConfig()
    before = len(check.problems)
    i2c = check.mapping(data.get("i2c") or {}, ("i2c",), I2C_OPTIONS)
    usable_i2c = I2cConfig(**i2c) if i2c and len(check.problems) == before else I2cConfig()
    actuators = []
    for at, item in check.items(data, "actuators"):
        before = len(check.problems)
        actuator = items.actuator(check, at, item)
        if actuator is not None and len(check.problems) == before:
            actuators.append(actuator)
    found_state_dir = state_dir(check, data)
    found_robot_id = robot_id(check, data)
    return Salvage(
        source,
        usable_gpio,
        tuple(actuators),
        found_state_dir,
        check.problems,
        found_robot_id,
        usable_i2c,
    )


def salvage_file(path: str | os.PathLike[str]) -> Salvage:
    source = str(path)
    try:
        text = read(path)
    except ConfigError as exc:
        return Salvage(source, GpioConfig(), (), None, exc.problems)
    try:
        data, lines = yamlfile.load(text)
    except yamlfile.YamlProblem as exc:
        # A syntax error in one section must not hide the actuators in another.
        data, lines = _sections_that_parse(text)
        found = salvage(data, source, lines)
        return dataclasses.replace(found, problems=[yaml_problem(source, exc), *found.problems])
    return salvage(data, source, lines)


def _sections_that_parse(text: str) -> tuple[dict, dict[tuple, int]]:
    """Parse each top-level block (a line starting in column 0) on its own."""
    starts = [i for i, line in enumerate(text.splitlines()) if line[:1].isalpha()]
    all_lines = text.splitlines()
    data: dict = {}
    lines: dict[tuple, int] = {}
    for start, end in zip(starts, [*starts[1:], len(all_lines)], strict=True):
        try:
            part, part_lines = yamlfile.load("\n".join(all_lines[start:end]))
        except yamlfile.YamlProblem:
            continue
        if isinstance(part, dict):
            data.update(part)
            lines.update({path: line + start for path, line in part_lines.items()})
    return data, lines
