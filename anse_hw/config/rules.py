"""Rules between the items of a config: what no single item can get wrong.

Names are unique, a GPIO pin has one owner, sensors of one driver agree
(two on one serial port), and a guard and a resume reflex on the same
sensor and actuator leave a gap between them (hysteresis).  Each rule gets
the items with their YAML paths, so its message points at the right line.
"""

from __future__ import annotations

from typing import Any

from anse_hw.budget import Budget, stop_delay
from anse_hw.config.schema import Checker
from anse_hw.drivers import registry
from anse_hw.model import LATCH, ActuatorConfig, EstopConfig, ReflexConfig, SensorConfig
from anse_hw.options import bcm_pin

__all__ = ["budget", "check_across"]

Placed = list[tuple[tuple, Any]]


def check_across(
    check: Checker,
    sensors: list[tuple[tuple, SensorConfig]],
    actuators: list[tuple[tuple, ActuatorConfig]],
    reflexes: list[tuple[tuple, ReflexConfig]],
    estop: EstopConfig | None = None,
    every_reflex: Placed | None = None,
) -> None:
    """Every cross-item rule, each problem reported through `check`.
    `every_reflex`: the reflexes with the limits among them, for their names."""
    for placed in (sensors, actuators, every_reflex or reflexes):
        _unique(check, placed)
    _pins_used_once(check, [*sensors, *actuators], estop)
    _i2c_addresses_once(check, [*sensors, *actuators])
    _channels_once(check, actuators)
    _shared_devices(check, sensors)
    _no_overlapping_pairs(check, reflexes)
    _latched_only_unguarded(check, actuators, [r for _, r in reflexes])
    _within_budget(check, [s for _, s in sensors], reflexes)


def budget(reflex: ReflexConfig, sensors: list[SensorConfig]) -> Budget:
    """What a guard's filters and for: add to a stop."""
    return stop_delay(
        reflex.when,
        {s.name: s.filters for s in sensors},
        {s.name: s.interval for s in sensors},
    )


def _within_budget(
    check: Checker, sensors: list[SensorConfig], placed: list[tuple[tuple, ReflexConfig]]
) -> None:
    """A guard may not be slowed silently: over its max_delay is refused."""
    for at, reflex in placed:
        if not reflex.guard:
            continue
        refusal = budget(reflex, sensors).refusal(reflex.max_delay)
        if refusal:
            check.problem(at, f"'{reflex.name}': {refusal}")


def _no_overlapping_pairs(check: Checker, placed: list[tuple[tuple, ReflexConfig]]) -> None:
    """A guard and a reflex that drives the same actuator out of its safe state,
    on the same sensor, must never both hold: where they overlap the actuator
    flaps at the rate of the readings."""
    for at, move in placed:
        if move.guard or move.region is None:
            continue
        for _, stop in placed:
            if (
                not stop.guard
                or stop.region is None
                or stop.sensors != move.sensors
                or not set(stop.actuators) & set(move.actuators)
            ):
                continue
            low = max(stop.region[0], move.region[0])
            high = min(stop.region[1], move.region[1])
            if low < high:
                check.problem(
                    at,
                    f"'{move.name}' ({move.condition}) and '{stop.name}' ({stop.condition}) "
                    f"both hold between {low:g} and {high:g}: "
                    f"{', '.join(sorted(set(stop.actuators) & set(move.actuators)))} would flap; "
                    "the resume threshold must lie beyond the stop threshold (hysteresis)",
                )


def _latched_only_unguarded(
    check: Checker, actuators: list[tuple[tuple, ActuatorConfig]], reflexes: list[ReflexConfig]
) -> None:
    """A manual on that stays on is for outputs no guard drives: where a
    guard does, the guard must stay in charge, so its manual on is held."""
    for at, actuator in actuators:
        if actuator.manual != LATCH:
            continue
        guards = [r.name for r in reflexes if r.guard and actuator.name in r.actuators]
        if guards:
            check.problem(
                (*at, "manual"),
                f"'{actuator.name}' is driven to its safe state by {', '.join(guards)}: "
                "manual: latch is only for outputs no guard drives (use manual: hold)",
            )


def _shared_devices(check: Checker, placed: list[tuple[tuple, SensorConfig]]) -> None:
    """Rules between sensors of one driver (two on one serial port, ...)."""
    for cls in registry.SENSOR_DRIVERS:
        mine = [(at, s) for at, s in placed if s.driver == cls.DRIVER and s.type in cls.KINDS]
        for index, key, problem in cls.problems_across([(s.name, s.options) for _, s in mine]):
            check.problem((*mine[index][0], key), problem)


def _unique(check: Checker, placed: Placed) -> None:
    seen: set[str] = set()
    for at, item in placed:
        if item.name in seen:
            check.problem((*at, "name"), f"'{item.name}' is used twice; names must be unique")
        seen.add(item.name)


def _i2c_addresses_once(check: Checker, placed: Placed) -> None:
    """One I2C address is one chip: items at the same address must be of one
    driver with the same chip settings (they then share the chip), else two
    drivers would program one device, or two calibrations fight over it."""
    owners: dict[int, tuple[str, dict, str]] = {}
    for at, device in placed:
        sensor = isinstance(device, SensorConfig)
        drivers = registry.SENSOR_DRIVERS if sensor else registry.ACTUATOR_DRIVERS
        cls = registry.find(drivers, device.type, device.driver)
        if not getattr(cls, "USES_I2C", False):
            continue
        address = device.options["address"]
        settings = {key: device.options[key] for key in cls.CHIP_OPTIONS}
        owner = owners.setdefault(address, (device.driver, settings, device.name))
        if owner[:2] == (device.driver, settings):
            continue
        driver, _, name = owner
        same = "with other settings" if driver == device.driver else f"({driver})"
        check.problem(
            (*at, "address"),
            f"0x{address:02x} is already used by {name} {same}: one address is one chip",
        )


def _channels_once(check: Checker, placed: Placed) -> None:
    """One PCA9685 channel drives one servo: two on it would fight."""
    owners: dict[tuple[int, int], str] = {}
    for at, device in placed:
        cls = registry.find(registry.ACTUATOR_DRIVERS, device.type, device.driver)
        if not cls.USES_I2C or device.options.get("channel") is None:
            continue
        where = (device.options["address"], device.options["channel"])
        owner = owners.setdefault(where, device.name)
        if owner != device.name:
            check.problem(
                (*at, "channel"),
                f"channel {where[1]} of 0x{where[0]:02x} already drives {owner}",
            )


def _pins_used_once(check: Checker, placed: Placed, estop: EstopConfig | None) -> None:
    owners: dict[int, str] = {estop.pin: "estop.pin"} if estop else {}
    for at, device in placed:
        sensor = isinstance(device, SensorConfig)
        drivers = registry.SENSOR_DRIVERS if sensor else registry.ACTUATOR_DRIVERS
        for option in registry.find(drivers, device.type, device.driver).OPTIONS:
            value = device.options.get(option.key)
            # A drive's wheel is a mapping of pins: {forward: 17, ...}.
            nested = value.items() if isinstance(value, dict) else [(None, value)]
            for part, pin in nested:
                key = option.key if part is None else f"{option.key}.{part}"
                where = (*at, option.key) if part is None else (*at, option.key, part)
                if option.pin:
                    _claim(check, owners, where, f"{device.name}.{key}", pin)
        encoders = getattr(device, "encoders", None) or {}
        for side in ("left", "right") if "left" in encoders else ():
            for part in ("a", "b"):
                where = (*at, "encoders", side, part)
                label = f"{device.name}.encoders.{side}.{part}"
                _claim(check, owners, where, label, encoders[side][part])


def _claim(check: Checker, owners: dict[int, str], where: tuple, label: str, pin: Any) -> None:
    """`label` takes GPIO `pin`, unless another owns it already."""
    if pin is None or bcm_pin(pin):
        return
    if pin in owners:
        check.problem(where, f"GPIO{pin} is already used by {owners[pin]}")
    else:
        owners[pin] = label
