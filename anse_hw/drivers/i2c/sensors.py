"""The I2C chips as sensors: one bus shared by every device, one chip object
per address shared by the sensors that read it, each sensor polled on a
thread of its own.

A stuck or vanished device therefore holds up only its own sensors' threads,
never the reflex path.  A bus error is a sensor fault (the engine puts the
actuators that sensor guards in their safe state) retried with
`backoff_delay`, so a device that comes back is read again within seconds
and a missing one does not fill the bus with NACKed transfers.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from anse_hw.drivers.i2c.bme280 import BME280, EnvReading
from anse_hw.drivers.i2c.bus import FIRST_ADDRESS, LAST_ADDRESS, BusFault, I2CBus, backoff_delay
from anse_hw.drivers.i2c.ina219 import INA219, PowerReading, settings_problem
from anse_hw.drivers.i2c.vl53l1x import VL53L1X, RangeReading
from anse_hw.drivers.threaded import ThreadedSensor
from anse_hw.kinds import SENSOR_KINDS, SensorKind
from anse_hw.options import Option, in_range
from anse_hw.readings import Sample

__all__ = ["BME280Sensor", "I2CSensor", "INA219Sensor", "SharedBus", "VL53L1XSensor"]

#: What a VL53L1X "signal fail" reads as: nothing reflected within its
#: long-distance mode's 4 m.  Treating it as a fault would stop a robot
#: every time it faces an open room; treating it as "far" lets a distance
#: guard (`below: 20`) hold, which is what an empty field of view means.
VL53L1X_FAR_CM = 400.0
#: VL53L1X range status 2 (vl53l1x.STATUS_TEXT): no target returned enough light.
SIGNAL_FAIL = 2


class SharedChip:
    """One chip object and its last reading, shared by the sensors at its
    address: an INA219's voltage and current sensors cause one read per
    interval, not two, and never interleave their transfers."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._last: Any = None
        self._at = -math.inf

    def read(self, fresh_for: float) -> Any:
        """The chip's reading, from the cache when it is younger than `fresh_for`."""
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._at < fresh_for:
                return self._last
            self._last = None  # a read that raises leaves nothing to reuse
            self._last, self._at = self.device.read(), now
            return self._last

    def stop(self) -> None:
        """Stop a chip that measures on its own (a VL53L1X's laser), between reads."""
        with self._lock:
            self.device.stop()


class SharedBus:
    """The bus every I2C sensor of one run talks through, closed when the
    last of them closes (the sensors are built and closed one by one, and
    none of them owns it)."""

    def __init__(self, bus: I2CBus) -> None:
        self.bus = bus
        self._lock = threading.Lock()
        self._chips: dict[int, SharedChip] = {}
        self._users = 0

    def attach(self, address: int, make: Callable[[I2CBus, int], Any]) -> SharedChip:
        """The chip at `address`, made by `make(bus, address)` by its first sensor."""
        with self._lock:
            self._users += 1
            if address not in self._chips:
                self._chips[address] = SharedChip(make(self.bus, address))
            return self._chips[address]

    @contextlib.contextmanager
    def held(self) -> Iterator[SharedBus]:
        """Keep the bus open while devices are built and closed one by one
        (--safe-stop), and close it after."""
        with self._lock:
            self._users += 1
        try:
            yield self
        finally:
            self.detach()

    def detach(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self.bus.close()


def _address_option(default: int) -> Option:
    return Option(
        "address",
        int,
        default,
        f"the device's 7-bit I2C address, as i2cdetect shows it (default 0x{default:02x})",
        in_range(FIRST_ADDRESS, LAST_ADDRESS),
    )


class I2CSensor(ThreadedSensor):
    """A sensor reading one quantity of the chip at `address`."""

    USES_I2C = True
    #: The chip's name in anse_hw.drivers.i2c.chips (what `--check` identifies).
    CHIP: ClassVar[str]
    #: The options that program the chip: sensors sharing it must agree on them.
    CHIP_OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind: SensorKind = SENSOR_KINDS["distance"],
        i2c: SharedBus,
        address: int,
        **options: Any,
    ) -> None:
        super().__init__(name, interval, max_age, kind=kind)
        self.address = address
        self._i2c = i2c
        self.chip = i2c.attach(address, lambda bus, at: self.make_chip(bus, at, options))

    def make_chip(self, bus: I2CBus, address: int, options: dict[str, Any]) -> Any:
        """The chip object from anse_hw.drivers.i2c (nothing is sent yet)."""
        raise NotImplementedError

    def sample(self, reading: Any) -> Sample | None:
        """This sensor's quantity from the chip's reading; None: no new measurement."""
        raise NotImplementedError

    def measure(self, on_sample, on_fault) -> None:
        failures = 0
        deadline = time.monotonic()
        while not self.stopping.is_set():
            try:
                # Half an interval: sensors sharing the chip at one pace share each read.
                reading = self.chip.read(self.interval / 2)
            except BusFault as exc:
                failures += 1
                if failures == 1:
                    on_fault(str(exc), True)
                self.stopping.wait(max(self.interval, backoff_delay(failures)))
                deadline = time.monotonic()
                continue
            if failures:
                failures = 0
                on_fault(f"0x{self.address:02x} answers again", False)
            sample = self.sample(reading)
            if sample is not None:
                on_sample(sample)
            deadline = max(deadline + self.interval, time.monotonic())
            self.stopping.wait(deadline - time.monotonic())

    def close(self) -> None:
        if not self.worker.stopping.is_set():
            super().close()
            self.leave_idle()
            self._i2c.detach()

    def leave_idle(self) -> None:
        """What the chip needs when its sensor closes (nothing, for most)."""

    def describe(self) -> str:
        return f"{type(self.chip.device).__name__} at 0x{self.address:02x}"


class INA219Sensor(I2CSensor):
    DRIVER = "ina219"
    CHIP = INA219.CHIP
    KINDS = ("voltage", "current")
    DEFAULT_INTERVAL = 0.5
    CHIP_OPTIONS = ("shunt_ohms", "max_current", "bus_range")
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        _address_option(0x40),
        Option(
            "shunt_ohms",
            (int, float),
            0.1,
            "the shunt resistor in ohms (0.1 on most breakouts)",
            in_range(0.0001, 100, " Ω"),
        ),
        Option(
            "max_current",
            (int, float),
            None,
            "the largest current expected, in A (default: what the shunt range allows); "
            "sets the current resolution",
        ),
        Option("bus_range", int, 32, "16 or 32: the bus voltage range in V"),
    )

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        problem = settings_problem(
            options["shunt_ohms"], options["max_current"], options["bus_range"]
        )
        if problem is None:
            return []
        # Each of its sentences starts with the key it is about.
        return [(problem.split()[0], problem)]

    def make_chip(self, bus: I2CBus, address: int, options: dict[str, Any]) -> INA219:
        return INA219(
            bus, address, options["shunt_ohms"], options["max_current"], options["bus_range"]
        )

    def sample(self, reading: PowerReading) -> Sample:
        value = reading.voltage if self.kind.name == "voltage" else reading.current
        return Sample(value) if value is not None else Sample.none(reading.problem or "no reading")


class BME280Sensor(I2CSensor):
    DRIVER = "bme280"
    CHIP = BME280.CHIP
    KINDS = ("temperature", "humidity", "pressure")
    DEFAULT_INTERVAL = 1.0
    OPTIONS: ClassVar[tuple[Option, ...]] = (_address_option(0x76),)

    def make_chip(self, bus: I2CBus, address: int, options: dict[str, Any]) -> BME280:
        return BME280(bus, address)

    def sample(self, reading: EnvReading) -> Sample:
        value = getattr(reading, self.kind.name)
        return Sample(value) if value is not None else Sample.none(reading.problem or "no reading")


class VL53L1XSensor(I2CSensor):
    DRIVER = "vl53l1x"
    CHIP = VL53L1X.CHIP
    KINDS = ("distance",)
    #: Its long-distance mode measures every 100 ms.
    DEFAULT_INTERVAL = 0.1
    OPTIONS: ClassVar[tuple[Option, ...]] = (_address_option(0x29),)

    def make_chip(self, bus: I2CBus, address: int, options: dict[str, Any]) -> VL53L1X:
        return VL53L1X(bus, address)

    def sample(self, reading: RangeReading | None) -> Sample | None:
        if reading is None:
            return None
        if reading.distance_cm is not None:
            return Sample(reading.distance_cm)
        if reading.status == SIGNAL_FAIL:
            return Sample(VL53L1X_FAR_CM)
        return Sample.none(reading.problem or f"range status {reading.status}")

    def leave_idle(self) -> None:
        """Turn the laser off: a stopped daemon leaves the chip idle."""
        with contextlib.suppress(BusFault):  # gone already: nothing is ranging
            self.chip.stop()
