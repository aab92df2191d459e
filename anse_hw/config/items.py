"""One sensor, actuator or reflex item of the YAML, checked and built.

An item's common keys come from the model (schema.SENSOR_COMMON...), its
driver's own keys from the driver class the registry finds for its `type:`
and `driver:`.  Each builder reports through the Checker and returns None
for an item it could not build, so the items after it are still checked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from anse_hw.conditions import Condition, Leaf, parse_hold, parse_when
from anse_hw.config.schema import (
    ACTUATOR_COMMON,
    REFLEX_OPTIONS,
    SENSOR_COMMON,
    Checker,
    nearest,
    shown,
)
from anse_hw.drivers import registry
from anse_hw.filters import FilterChain, parse_filters
from anse_hw.kinds import ACTUATOR_KINDS, ESTOP, MOVING, SENSOR_KINDS, SensorKind
from anse_hw.model import (
    DEFAULT_MAX_AGE,
    HOLD,
    ActuatorConfig,
    LimitConfig,
    ReflexConfig,
    SensorConfig,
)
from anse_hw.motion import aim_of, twist_problem
from anse_hw.options import REQUIRED, Option
from anse_hw.shape import SpecError

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
    chain = FilterChain()
    if values["filters"] is not None:
        try:
            chain = parse_filters(
                values["filters"],
                (*path, "filters"),
                binary=SENSOR_KINDS[values["type"]].binary,
            )
        except SpecError as exc:
            check.problem(exc.path, exc.reason)
            return None
    return SensorConfig(
        name=values["name"],
        type=values["type"],
        driver=cls.DRIVER,
        interval=float(interval),
        max_age=float(max_age),
        options=options,
        filters=chain,
    )


def actuator(check: Checker, path: tuple, item: Any) -> ActuatorConfig | None:
    built = _device(check, path, item, ACTUATOR_COMMON, registry.ACTUATOR_DRIVERS)
    if built is None:
        return None
    values, cls, options = built
    kind = ACTUATOR_KINDS[values["type"]]
    safe = kind.safe_state(values["safe"])
    if safe is None:
        if kind.value is None:
            problem = f"'{values['safe']}' must be one of {', '.join(kind.safe)} for a {kind.name}"
        else:
            said = "is missing" if values["safe"] is None else f"'{values['safe']}' is not valid"
            problem = (
                f"{said}: a {kind.name}'s safe is an {kind.value}: where it goes when in doubt"
            )
        check.problem((*path, "safe"), problem)
        return None
    problem = cls.state_problem(options, safe)
    if problem:
        check.problem((*path, "safe"), problem)
        return None
    for key in ("min_on", "min_off", "manual"):
        if values[key] and values[key] != HOLD and values["type"] != "output":
            check.problem((*path, key), f"is for outputs; a {kind.name} has no on and off")
            return None
    steering = {
        k: values[k] for k in ("max_speed", "accel", "encoders", "stall") if values[k] is not None
    }
    for key in steering:
        if not kind.steered:
            check.problem((*path, key), f"is for a drive; a {kind.name} is not steered")
            return None
    stalling = {"stall": values["stall"], "jam_after": options.get("jam_after")}
    for key, value in stalling.items():
        if value is not None and "encoders" not in steering:
            check.problem((*path, key), "needs encoders: a stall is seen on a wheel's encoder")
            return None
    return ActuatorConfig(
        name=values["name"],
        type=values["type"],
        driver=cls.DRIVER,
        safe_state=safe,
        min_on=values["min_on"],
        min_off=values["min_off"],
        manual=values["manual"],
        options=options,
        **steering,
    )


def _target(check: Checker, path: tuple, command: Any, act: ActuatorConfig) -> str | None:
    """The state `command` drives `act` to (E-stop: its safe state, whatever
    its kind), or None with the problem said."""
    kind = ACTUATOR_KINDS[act.type]
    target = act.safe_state if command == ESTOP else kind.target(command)
    if target is None:
        check.problem(
            (*path, "command"),
            f"'{command}' is not a command for {act.type} '{act.name}'; "
            f"it takes {kind.accepts} | {ESTOP}",
        )
        return None
    cls = registry.find(registry.ACTUATOR_DRIVERS, act.type, act.driver)
    problem = cls.state_problem(act.options, target)
    if problem:
        check.problem((*path, "command"), f"{act.name}: {problem}")
        return None
    return target


def _known_actuators(
    check: Checker, path: tuple, values: dict, actuators: list[ActuatorConfig]
) -> list[ActuatorConfig] | None:
    """The actuators the reflex drives: `actuator`, or the `actuators:` list
    (a did-you-mean for a name that is not configured)."""
    if (values["actuator"] is None) == (values["actuators"] is None):
        check.problem(path, "give actuator: NAME or actuators: [NAME, ...] (one of them)")
        return None
    key = "actuator" if values["actuator"] is not None else "actuators"
    names = [values["actuator"]] if key == "actuator" else values["actuators"]
    if not names:
        check.problem((*path, key), "expected at least one actuator")
        return None
    by_name = {a.name: a for a in actuators}
    driven = []
    for i, name in enumerate(names):
        at = (*path, key) if key == "actuator" else (*path, key, i)
        if name not in by_name:
            hint = nearest(str(name), list(by_name))
            tip = f"; did you mean '{hint}'?" if hint else ""
            check.problem(
                at,
                f"no actuator named '{name}' is configured "
                f"(configured: {', '.join(by_name) or 'none'}){tip}",
            )
            return None
        if by_name[name] in driven:
            check.problem(at, f"'{name}' is named twice")
            return None
        driven.append(by_name[name])
    return driven


def _condition(
    check: Checker, path: tuple, values: dict, sensors: list[SensorConfig]
) -> tuple[Condition, str] | None:
    """The reflex's condition (from `when:` or the one-line form, with its
    `for:`) and its text for the wire."""
    kinds = {s.name: s.kind for s in sensors}
    one_line_keys = [k for k in ("sensor", "below", "above", "active") if values[k] is not None]
    try:
        hold = parse_hold(values["for"], (*path, "for")) if values["for"] is not None else 0.0
        if values["when"] is not None:
            if one_line_keys:
                check.problem(
                    (*path, one_line_keys[0]),
                    f"give when: or the one-line form (sensor, below/above/active), "
                    f"not both; {one_line_keys[0]} is beside when:",
                )
                return None
            root = parse_when(values["when"], (*path, "when"), kinds)
            condition = Condition(root, hold)
            return condition, condition.text({n: k.unit for n, k in kinds.items()})
    except SpecError as exc:
        check.problem(exc.path, exc.reason)
        return None
    if values["sensor"] is None:
        check.problem(path, "missing required key 'sensor' (or a when: condition)")
        return None
    if values["sensor"] not in kinds:
        hint = nearest(values["sensor"], list(kinds))
        tip = f"; did you mean '{hint}'?" if hint else ""
        check.problem(
            (*path, "sensor"),
            f"no sensor named '{values['sensor']}' is configured "
            f"(configured: {', '.join(kinds) or 'none'}){tip}",
        )
        return None
    kind = kinds[values["sensor"]]
    test = _threshold(check, path, values, kind)
    if test is None:
        return None
    leaf = Leaf(values["sensor"], *test)
    condition = Condition(leaf, hold)
    # The seed's wire text names a numeric sensor by its kind: "distance < 10cm".
    names = {} if kind.binary else {values["sensor"]: kind.name}
    return condition, condition.text({values["sensor"]: kind.unit}, names)


def reflex(
    check: Checker,
    path: tuple,
    item: Any,
    sensors: list[SensorConfig],
    actuators: list[ActuatorConfig],
) -> ReflexConfig | LimitConfig | None:
    """A reflex, or a LimitConfig for a reflex whose command is a `limit`."""
    values = check.mapping(item, path, REFLEX_OPTIONS)
    if values is None:
        return None
    driven = _known_actuators(check, path, values, actuators)
    command = values["command"]
    if driven is not None and isinstance(command, dict) and "limit" in command:
        return _limit(check, path, values, sensors, driven)
    built = _condition(check, path, values, sensors)
    if driven is None or built is None or values["name"] is None or command is None:
        return None
    condition, text = built
    twist = how = None
    steered = any(ACTUATOR_KINDS[a.type].steered for a in driven)
    if isinstance(command, dict) and (steered or {"linear", "angular"} & set(command)):
        twist = _twist(check, (*path, "command"), command, driven)
        if twist is None:
            return None
        command = f"linear {twist[0]:g} angular {twist[1]:g}"
    elif all(ACTUATOR_KINDS[a.type].aimed for a in driven) and command not in ("stop", ESTOP):
        aimed = aim_of(command)
        if isinstance(aimed, str):
            check.problem((*path, "command"), f"{shown(command)} {aimed}")
            return None
        command, how = aimed
    elif not isinstance(command, str) and not all(ACTUATOR_KINDS[a.type].value for a in driven):
        check.problem((*path, "command"), f"{shown(command)} is for a motor, a drive or a servo")
        return None
    targets = set()
    for act in driven:
        # A cruise's twist moves a drive; every other command is the kind's own.
        target = MOVING if twist is not None else _target(check, path, command, act)
        if target is None:
            return None
        targets.add((target, target == act.safe_state))
    if len({safe for _, safe in targets}) > 1:
        check.problem(
            (*path, "command"),
            f"'{command}' puts some of {', '.join(a.name for a in driven)} in "
            "their safe state and others out of it: split it into a guard and another reflex",
        )
        return None
    ((target, guard), *_) = targets
    return ReflexConfig(
        name=values["name"],
        sensor=values["sensor"],
        actuator=values["actuator"],
        # A servo's `{angle: 45}` is shown as the angle it drives to.
        command=command if isinstance(command, str) else target,
        below=values["below"],
        above=values["above"],
        max_delay=values["max_delay"],
        when=condition,
        actuators=tuple(a.name for a in driven),
        condition=text,
        target=target,
        guard=guard,
        latch=values["command"] == ESTOP,
        twist=twist,
        how=how,
    )


def _steered_only(check: Checker, path: tuple, driven: list[ActuatorConfig], what: str) -> bool:
    """Only a drive takes `what`; says which actuator does not."""
    for act in driven:
        if not ACTUATOR_KINDS[act.type].steered:
            check.problem(path, f"{what} is for a drive; '{act.name}' is type {act.type}")
            return False
    return True


def _twist(
    check: Checker, path: tuple, command: dict, driven: list[ActuatorConfig]
) -> tuple[float, float] | None:
    """A cruise command, `{linear, angular}`, as numbers."""
    if not _steered_only(check, path, driven, "{linear, angular}"):
        return None
    problem = twist_problem(command)
    if problem:
        check.problem(path, problem)
        return None
    return float(command["linear"]), float(command["angular"])


def _limit(
    check: Checker,
    path: tuple,
    values: dict,
    sensors: list[SensorConfig],
    driven: list[ActuatorConfig],
) -> LimitConfig | None:
    """`command: {limit: {full_at, zero_at}}` on one numeric sensor: no
    condition (it caps all the time), full speed at full_at and beyond,
    none at zero_at and nearer."""
    at = (*path, "command")
    if not _steered_only(check, at, driven, "limit"):
        return None
    extra = [k for k in ("below", "above", "active", "when", "for") if values[k] is not None]
    if extra:
        check.problem((*path, extra[0]), "a limit has no condition: it caps all the time")
        return None
    kinds = {s.name: s.kind for s in sensors}
    sensor = values["sensor"]
    if sensor not in kinds or kinds[sensor].binary:
        check.problem(
            (*path, "sensor"),
            f"a limit needs sensor: one of the numeric sensors "
            f"({', '.join(n for n, k in kinds.items() if not k.binary) or 'none'})",
        )
        return None
    limit = values["command"]
    spec = limit["limit"]
    if set(limit) != {"limit"} or not isinstance(spec, dict) or set(spec) != {"full_at", "zero_at"}:
        check.problem(at, "must be {limit: {full_at: N, zero_at: M}} (both keys, nothing else)")
        return None
    kind = kinds[sensor]
    for key in ("full_at", "zero_at"):
        number = spec[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            check.problem((*at, "limit", key), f"expected a number, got {number!r}")
            return None
        if not kind.plausible(number):
            check.problem(
                (*at, "limit", key),
                f"{number:g} is outside what a {kind.name} sensor can read "
                f"({kind.low:g} to {kind.high:g} {kind.unit})",
            )
            return None
    if not spec["full_at"] > spec["zero_at"]:
        check.problem(
            (*at, "limit"),
            f"full_at ({spec['full_at']:g}) must be beyond zero_at ({spec['zero_at']:g}): "
            "full speed far away, none near",
        )
        return None
    if values["name"] is None:
        return None
    return LimitConfig(
        name=values["name"],
        sensor=sensor,
        actuators=tuple(a.name for a in driven),
        full_at=float(spec["full_at"]),
        zero_at=float(spec["zero_at"]),
    )


def _threshold(
    check: Checker, path: tuple, values: dict, kind: SensorKind
) -> tuple[str, float | bool] | None:
    """The one-line form's test and threshold: ('below', 10.0), ('active', True)."""
    given = [k for k in ("below", "above", "active") if values[k] is not None]
    if kind.binary:
        if given != ["active"]:
            check.problem(
                path,
                f"a binary sensor takes 'active: true' or 'active: false', "
                f"not {' and '.join(given) or 'nothing'}",
            )
            return None
        return "active", bool(values["active"])
    if len(given) != 1 or given == ["active"]:
        check.problem(
            path,
            f"give exactly one of 'below' or 'above' (the threshold in "
            f"{kind.unit}); 'active' is for binary sensors",
        )
        return None
    key = given[0]
    threshold = values[key]
    problem = kind.threshold_problem(key, threshold)
    if problem:
        check.problem((*path, key), problem)
        return None
    return key, threshold
