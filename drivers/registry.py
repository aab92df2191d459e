"""Driver names in the YAML (`driver: hcsr04`) mapped to their classes.

The only place that knows which classes exist; the config validates options
against `OPTIONS`, the daemon builds devices with `build_sensor` /
`build_actuator`.  `--sim` maps every driver to its fake of the same kind.
"""

from __future__ import annotations

from typing import Any

from drivers.base import ActuatorDriver, SensorDriver
from drivers.gpio_motor import GpioMotor
from drivers.hcsr04 import HCSR04Sensor
from drivers.serial_sensor import SerialDistanceSensor
from drivers.sim import SimDistanceSensor, SimMotor

SENSORS: dict[str, type[SensorDriver]] = {
    "sim": SimDistanceSensor,
    "hcsr04": HCSR04Sensor,
    "serial": SerialDistanceSensor,
}
ACTUATORS: dict[str, type[ActuatorDriver]] = {
    "sim": SimMotor,
    "gpio": GpioMotor,
}
#: Drivers that need a gpiozero pin factory.
USES_GPIO = {HCSR04Sensor, GpioMotor}


def build_sensor(
    driver: str,
    name: str,
    interval: float,
    max_age: float,
    options: dict[str, Any],
    pin_factory: Any = None,
) -> SensorDriver:
    cls = SENSORS[driver]
    if cls in USES_GPIO:
        return cls(name, interval, max_age, pin_factory=pin_factory, **options)
    return cls(name, interval, max_age, **options)


def build_actuator(
    driver: str, name: str, options: dict[str, Any], pin_factory: Any = None
) -> ActuatorDriver:
    cls = ACTUATORS[driver]
    if cls in USES_GPIO:
        return cls(name, pin_factory=pin_factory, **options)
    return cls(name, **options)
