"""The robot's devices opened from its config, all or none.

The daemon, `--check` (the pin factory alone), replay (its actuators on
fakes) and the benchmarks open devices the same way: every one by name,
and those already open closed again when one fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from anse_hw.drivers.estop import EstopInput
from anse_hw.drivers.i2c.bus import I2CBus, open_bus
from anse_hw.drivers.i2c.chips import check_device
from anse_hw.drivers.i2c.fakebus import FakeBus, FakeFileError
from anse_hw.drivers.i2c.sensors import SharedBus
from anse_hw.drivers.pins import make_pin_factory
from anse_hw.drivers.registry import (
    ACTUATOR_DRIVERS,
    SENSOR_DRIVERS,
    build_actuator,
    build_sensor,
    find,
    with_encoders,
)
from anse_hw.errors import DriverError
from anse_hw.model import Config, I2cConfig
from anse_hw.readings import ActuatorDriver, SensorDriver
from anse_hw.recording import trace

log = logging.getLogger(__name__)


def needs_gpio(config: Config) -> bool:
    classes = [find(SENSOR_DRIVERS, s.type, s.driver) for s in config.sensors]
    classes += [find(ACTUATOR_DRIVERS, a.type, a.driver) for a in config.actuators]
    return config.estop is not None or any(cls.USES_GPIO for cls in classes)


def open_pin_factory(config: Config) -> Any:
    if not needs_gpio(config):
        return None
    gpio = config.gpio
    return make_pin_factory(gpio.pin_factory, gpio.mock_state_file, gpio.mock_input_file)


def _i2c_items(config: Config) -> list[tuple[tuple, Any, type]]:
    """(YAML path, item, driver class) of every sensor and actuator on I2C."""
    return [
        ((section, index), item, cls)
        for section, placed, drivers in (
            ("sensors", config.sensors, SENSOR_DRIVERS),
            ("actuators", config.actuators, ACTUATOR_DRIVERS),
        )
        for index, item in enumerate(placed)
        if (cls := find(drivers, item.type, item.driver)).USES_I2C
    ]


def shared_i2c(config: Config) -> SharedBus | None:
    """The run's one I2C bus, shared by its I2C sensors and servo boards
    (None: nothing is on I2C)."""
    return SharedBus(open_i2c_bus(config.i2c)) if _i2c_items(config) else None


def _own_bus(config: Config, section: str) -> SharedBus | None:
    """A bus for one section's devices alone, where the caller gave none
    (tests that build sensors or actuators on their own)."""
    if any(at[0] == section for at, _, _ in _i2c_items(config)):
        return SharedBus(open_i2c_bus(config.i2c))
    return None


def open_i2c_bus(i2c: I2cConfig) -> I2CBus:
    """`/dev/i2c-<bus>`, or the fake bus `i2c.fake_file` describes; a
    DriverError naming the key when it cannot be opened."""
    if i2c.fake_file is not None:
        try:
            return FakeBus(i2c.fake_file, state_file=i2c.fake_state_file)
        except FakeFileError as exc:
            raise DriverError(str(exc), ("i2c", "fake_file")) from None
    try:
        return open_bus(i2c.bus)
    except OSError as exc:
        hint = (
            " (is I2C enabled: raspi-config, or dtparam=i2c_arm=on?)"
            if isinstance(exc, FileNotFoundError)
            else " (is the user in group i2c?)"
            if isinstance(exc, PermissionError)
            else ""
        )
        raise DriverError(f"/dev/i2c-{i2c.bus}: {exc.strerror}{hint}", ("i2c", "bus")) from None


def i2c_problems(config: Config) -> list[str]:
    """What `--check` finds on the bus, as i2cdetect would and then by each
    chip's ID: nothing at a configured address, or another chip there, is a
    config error at that item's `address` line.  Nothing is programmed."""
    placed = [(at, item.options["address"], cls.CHIP) for at, item, cls in _i2c_items(config)]
    if not placed:
        return []
    try:
        bus = open_i2c_bus(config.i2c)
    except DriverError as exc:
        return [config.problem(exc.key, exc.reason)]
    problems: list[str] = []
    checked: set[int] = set()
    try:
        for at, address, chip in placed:
            problem = None if address in checked else check_device(bus, chip, address)
            checked.add(address)
            if problem:
                problems.append(config.problem((*at, "address"), problem))
    finally:
        bus.close()
    return problems


def build_estop(config: Config, pin_factory: Any) -> EstopInput | None:
    """The hardwired E-stop input, if one is configured."""
    return EstopInput(config.estop.pin, pin_factory) if config.estop else None


def build_actuators(
    config: Config, pin_factory: Any, i2c: SharedBus | None = None
) -> dict[str, ActuatorDriver]:
    """Every actuator, in its safe state (a drive with its encoders); `i2c`
    as for `build_sensors`."""
    if i2c is None:
        i2c = _own_bus(config, "actuators")
    return _build_all(
        config.actuators,
        lambda a: with_encoders(a, build_actuator(a, pin_factory, i2c), pin_factory),
    )


def build_sensors(
    config: Config, pin_factory: Any, i2c: SharedBus | None = None
) -> dict[str, SensorDriver]:
    """Every sensor; the I2C ones share one bus (`i2c`, which the servo
    boards share too; else opened here), closed by the last of them to close."""
    recorded = trace.recorded_traces(config.sensors)
    if i2c is None:
        i2c = _own_bus(config, "sensors")
    return _build_all(
        config.sensors, lambda s: build_sensor(s, pin_factory, recorded.get(s.name), i2c)
    )


def _build_all(configs: Iterable[Any], make: Callable[[Any], Any]) -> dict[str, Any]:
    """Open every device, by name; if one fails, release the ones already open."""
    built: dict[str, Any] = {}
    try:
        for item in configs:
            built[item.name] = make(item)
    except Exception:
        close_all(built.values())
        raise
    return built


def close_all(devices: Any) -> None:
    for device in devices:
        try:
            device.close()
        except Exception:
            log.exception("could not close %s", device.name)
