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
from anse_hw.drivers.pins import make_pin_factory
from anse_hw.drivers.registry import (
    ACTUATOR_DRIVERS,
    SENSOR_DRIVERS,
    build_actuator,
    build_sensor,
    find,
    with_encoders,
)
from anse_hw.model import Config
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


def build_estop(config: Config, pin_factory: Any) -> EstopInput | None:
    """The hardwired E-stop input, if one is configured."""
    return EstopInput(config.estop.pin, pin_factory) if config.estop else None


def build_actuators(config: Config, pin_factory: Any) -> dict[str, ActuatorDriver]:
    return _build_all(
        config.actuators,
        lambda a: with_encoders(a, build_actuator(a, pin_factory), pin_factory),
    )


def build_sensors(config: Config, pin_factory: Any) -> dict[str, SensorDriver]:
    recorded = trace.recorded_traces(config.sensors)
    return _build_all(config.sensors, lambda s: build_sensor(s, pin_factory, recorded.get(s.name)))


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
