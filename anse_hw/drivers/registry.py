"""Which driver classes exist, and which kinds each can serve.

The only place that lists the classes: the config validates `type:` +
`driver:` and the options against them, the daemon builds devices with
`build_sensor` / `build_actuator`, and `--sim` maps every driver to the fake
of the same kind.  A YAML driver name may serve several kinds (`sim` serves
all; `gpio` is a binary input for sensors and a motor or an output for
actuators).
"""

from __future__ import annotations

from typing import Any, Protocol

from anse_hw import wheels
from anse_hw.drivers.encoded_drive import EncodedDrive
from anse_hw.drivers.encoders import Encoders, GpioEncoders, PlantEncoders, SerialEncoders
from anse_hw.drivers.gpio_drive import GpioDrive
from anse_hw.drivers.gpio_io import GpioInputSensor, GpioOutput
from anse_hw.drivers.gpio_motor import GpioMotor
from anse_hw.drivers.hcsr04 import HCSR04Sensor
from anse_hw.drivers.i2c.sensors import BME280Sensor, INA219Sensor, VL53L1XSensor
from anse_hw.drivers.serial_sensor import SerialSensor
from anse_hw.drivers.servo import GpioServo, PCA9685Servo
from anse_hw.drivers.sim import SimActuator, SimDrive, SimSensor
from anse_hw.drivers.sysfs_temperature import CpuTemperatureSensor, DS18B20Sensor
from anse_hw.kinds import SENSOR_KINDS
from anse_hw.readings import ActuatorDriver, DriveDriver, SensorDriver

SENSOR_DRIVERS: tuple[type[SensorDriver], ...] = (
    SimSensor,
    HCSR04Sensor,
    SerialSensor,
    DS18B20Sensor,
    CpuTemperatureSensor,
    GpioInputSensor,
    INA219Sensor,
    BME280Sensor,
    VL53L1XSensor,
)
ACTUATOR_DRIVERS: tuple[type[ActuatorDriver], ...] = (
    SimActuator,
    SimDrive,
    GpioMotor,
    GpioOutput,
    GpioDrive,
    GpioServo,
    PCA9685Servo,
)


def find(drivers: tuple[type, ...], kind: str, driver: str) -> type | None:
    return next((d for d in drivers if driver == d.DRIVER and kind in d.KINDS), None)


def names(drivers: tuple[type, ...], kind: str | None = None) -> list[str]:
    """Driver names, in registry order; only those serving `kind` when given."""
    found = [d.DRIVER for d in drivers if kind is None or kind in d.KINDS]
    return list(dict.fromkeys(found))


class SensorSpec(Protocol):
    """What building a sensor needs (anse_hw.model.SensorConfig is one)."""

    name: str
    type: str
    driver: str
    interval: float
    max_age: float
    options: dict[str, Any]


class ActuatorSpec(Protocol):
    """What building an actuator needs (anse_hw.model.ActuatorConfig is one)."""

    name: str
    type: str
    driver: str
    safe_state: str
    options: dict[str, Any]


def build_sensor(
    spec: SensorSpec,
    pin_factory: Any = None,
    recorded: list[float | None] | None = None,
    i2c: Any = None,
) -> SensorDriver:
    """`recorded`: the readings of the recording a sim sensor's trace names;
    `i2c`: the run's shared I2C bus (anse_hw.drivers.i2c.sensors.SharedBus)."""
    cls = find(SENSOR_DRIVERS, spec.type, spec.driver)
    extra = {"pin_factory": pin_factory} if cls.USES_GPIO else {}
    if cls.USES_I2C:
        extra["i2c"] = i2c
    if recorded is not None:
        extra["recorded"] = recorded
    return cls(
        spec.name,
        spec.interval,
        spec.max_age,
        kind=SENSOR_KINDS[spec.type],
        **extra,
        **spec.options,
    )


def build_actuator(spec: ActuatorSpec, pin_factory: Any = None, i2c: Any = None) -> ActuatorDriver:
    """`i2c`: the run's shared I2C bus, as for `build_sensor` (a PCA9685's servos)."""
    cls = find(ACTUATOR_DRIVERS, spec.type, spec.driver)
    extra = {"pin_factory": pin_factory} if cls.USES_GPIO else {}
    if cls.USES_I2C:
        extra["i2c"] = i2c
    return cls(spec.name, spec.safe_state, **extra, **spec.options)


def with_encoders(spec: Any, actuator: ActuatorDriver, pin_factory: Any = None) -> ActuatorDriver:
    """A drive whose spec has `encoders` (anse_hw.model.ActuatorConfig),
    wrapped to measure its wheels, close their speed loops and stop it on a
    stall; any other actuator as it is.  The sim's drive gets simulated
    wheels whose encoders count (so --sim runs the whole loop)."""
    encoders = getattr(spec, "encoders", None)
    if encoders is None or not isinstance(actuator, DriveDriver):
        return actuator
    counts = wheels.counts_per_rev(encoders)
    max_rps = encoders.get("max_rps", wheels.DEFAULT_MAX_RPS)
    try:
        if spec.driver == "sim":
            jam_after = getattr(actuator, "jam_after", None)
            source: Encoders = PlantEncoders(actuator, counts, max_rps, jam_after)
        elif "left" in encoders:
            source = GpioEncoders(encoders["left"], encoders["right"], pin_factory=pin_factory)
        else:
            source = SerialEncoders(encoders["port"], encoders["baud"])
    except Exception:
        actuator.close()
        raise
    after = (spec.stall or {}).get("after", wheels.DEFAULT_STALL_AFTER)
    return EncodedDrive(actuator, source, counts, max_rps, after)
