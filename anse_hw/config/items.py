"""One sensor, actuator or reflex item of the YAML, checked and built.

An item's common keys come from the model (schema.SENSOR_COMMON...), its
driver's own keys from the driver class the registry finds for its `type:`
and `driver:`.  Each builder reports through the Checker and returns None
for an item it could not build, so the items after it are still checked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from anse_hw.config.schema import (
    ACTUATOR_COMMON,
    REFLEX_OPTIONS,
    SENSOR_COMMON,
    Checker,
    nearest,
)
from anse_hw.drivers import registry
from anse_hw.kinds import ACTUATOR_KINDS, BINARY_THRESHOLD, ESTOP, SensorKind
from anse_hw.model import DEFAULT_MAX_AGE, ActuatorConfig, ReflexConfig, SensorConfig
from anse_hw.options import REQUIRED, Option

__all__ = ["actuator", "reflex", "sensor", "simulated"]


def _device(
    check: Checker,
    path: tuple,
    item: Any,
    common: tuple[Option, ...],
    drivers: tuple[type, ...],
) -> tuple[dict, type, dict] | None:
    """Common keys + the driver's own, for the driver that serves this kind."""
    if not isinstance(item, dict):
        check.problem(path, f"expected a mapping, got {item!r}")
        return None
    kind = item.get("type", next(o.default for o in common if o.key == "type"))
    driver = item.get("driver")
    cls = registry.find(drivers, kind, driver) if isinstance(driver, str) else None
    values = check.mapping(item, path, common, cls.OPTIONS if cls else ())
    if values is None or values["name"] is None or values["type"] is None:
        return None
    if cls is None:
        if isinstance(driver, str):
            check.problem(
                (*path, "driver"),
                f"'{driver}' must be one of {', '.join(registry.names(drivers, kind))} "
                f"(the drivers for type {kind})",
            )
        return None
    options = {o.key: values.pop(o.key) for o in cls.OPTIONS}
    if all(options[o.key] is not None for o in cls.OPTIONS if o.default is REQUIRED):
        for key, problem in cls.problems(options):
            check.problem((*path, key), problem)
    return values, cls, options


def simulated(devices: list) -> list:
    """--sim: every driver swapped for the fake of its kind, with the fake's
    defaults; names, kinds, pace, safe states and reflexes stay as configured."""
    swapped = []
    for device in devices:
        if device.driver != "sim":
            drivers = (
                registry.SENSOR_DRIVERS
                if isinstance(device, SensorConfig)
                else registry.ACTUATOR_DRIVERS
            )
            fake = registry.find(drivers, device.type, "sim")
            options = {o.key: o.default for o in fake.OPTIONS}
            device = dataclasses.replace(device, driver="sim", options=options)
        swapped.append(device)
    return swapped


def sensor(check: Checker, path: tuple, item: Any) -> SensorConfig | None:
    built = _device(check, path, item, SENSOR_COMMON, registry.SENSOR_DRIVERS)
    if built is None:
        return None
    values, cls, options = built
    interval = values["interval"] or cls.DEFAULT_INTERVAL
    max_age = values["max_age"] or max(DEFAULT_MAX_AGE, 3 * interval)
    if max_age <= interval:
        check.problem(
            (*path, "max_age"),
            f"{max_age:g} s must be longer than the interval ({interval:g} s), or the sensor "
            "is stale between every two readings (3 intervals is a good value)",
        )
    return SensorConfig(
        name=values["name"],
        type=values["type"],
        driver=cls.DRIVER,
        interval=float(interval),
        max_age=float(max_age),
        options=options,
    )


def actuator(check: Checker, path: tuple, item: Any) -> ActuatorConfig | None:
    built = _device(check, path, item, ACTUATOR_COMMON, registry.ACTUATOR_DRIVERS)
    if built is None:
        return None
    values, cls, options = built
    kind = ACTUATOR_KINDS[values["type"]]
    if values["safe"] is not None and values["safe"] not in kind.safe:
        check.problem(
            (*path, "safe"),
            f"'{values['safe']}' must be one of {', '.join(kind.safe)} for a {kind.name}",
        )
        return None
    return ActuatorConfig(
        name=values["name"],
        type=values["type"],
        driver=cls.DRIVER,
        safe_state=kind.safe_state(values["safe"]),
        options=options,
    )


def _known_names(check: Checker, path: tuple, values: dict, sensors: list, actuators: list) -> bool:
    """The reflex's sensor and actuator are configured (a did-you-mean if not)."""
    ok = True
    for key, names in (
        ("sensor", [s.name for s in sensors]),
        ("actuator", [a.name for a in actuators]),
    ):
        if values[key] is not None and values[key] not in names:
            hint = nearest(values[key], names)
            tip = f"; did you mean '{hint}'?" if hint else ""
            check.problem(
                (*path, key),
                f"no {key} named '{values[key]}' is configured "
                f"(configured: {', '.join(names) or 'none'}){tip}",
            )
            ok = False
    return ok


def reflex(
    check: Checker,
    path: tuple,
    item: Any,
    sensors: list[SensorConfig],
    actuators: list[ActuatorConfig],
) -> ReflexConfig | None:
    values = check.mapping(item, path, REFLEX_OPTIONS)
    if values is None:
        return None
    ok = _known_names(check, path, values, sensors, actuators)
    if not ok or any(values[k] is None for k in ("name", "sensor", "actuator", "command")):
        return None
    kind = next(s.kind for s in sensors if s.name == values["sensor"])
    driven = next(a for a in actuators if a.name == values["actuator"])
    # E-stop drives the actuator to its safe state, whatever its kind.
    commands = {**ACTUATOR_KINDS[driven.type].commands, ESTOP: driven.safe_state}
    if values["command"] not in commands:
        check.problem(
            (*path, "command"),
            f"'{values['command']}' is not a command for {driven.type} "
            f"'{driven.name}'; it takes {' | '.join(commands)}",
        )
        return None
    below, above = _threshold(check, path, values, kind)
    if below is None and above is None:
        return None
    target = commands[values["command"]]
    return ReflexConfig(
        name=values["name"],
        sensor=values["sensor"],
        actuator=values["actuator"],
        command=values["command"],
        below=below,
        above=above,
        kind=kind,
        target=target,
        guard=target == driven.safe_state,
        latch=values["command"] == ESTOP,
    )


def _threshold(
    check: Checker, path: tuple, values: dict, kind: SensorKind
) -> tuple[float | None, float | None]:
    """(below, above); a binary sensor's `active` becomes a threshold between 0 and 1."""
    given = [k for k in ("below", "above", "active") if values[k] is not None]
    if kind.binary:
        if given != ["active"]:
            check.problem(
                path,
                f"a binary sensor takes 'active: true' or 'active: false', "
                f"not {' and '.join(given) or 'nothing'}",
            )
            return None, None
        return (None, BINARY_THRESHOLD) if values["active"] else (BINARY_THRESHOLD, None)
    if len(given) != 1 or given == ["active"]:
        check.problem(
            path,
            f"give exactly one of 'below' or 'above' (the threshold in "
            f"{kind.unit}); 'active' is for binary sensors",
        )
        return None, None
    key = given[0]
    threshold = values[key]
    if not kind.low < threshold < kind.high:
        check.problem(
            (*path, key),
            f"{threshold:g} is outside what a {kind.name} sensor can read "
            f"({kind.low:g} to {kind.high:g} {kind.unit}), so the reflex would "
            f"{'never' if (key == 'below') == (threshold <= kind.low) else 'always'} fire",
        )
        return None, None
    return (threshold, None) if key == "below" else (None, threshold)
