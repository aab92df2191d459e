"""The I2C chips by driver name, and the check `--check` runs per device.

A wrong address or a chip answering where another was configured should
be found before the daemon runs: `check_device` first asks whether
anything ACKs at the address (as i2cdetect does), then runs that chip's
identity check.  Before any check that writes (the VL53L1X's 16-bit
register pointer is a write), it makes sure the device is not a PCA9685:
both usual INA219 and PCA9685 boards sit at 0x40, and a stray write to a
PCA9685's MODE registers would disturb the servos it drives.
"""

from __future__ import annotations

from collections.abc import Callable

from anse_hw.drivers.i2c.bme280 import BME280
from anse_hw.drivers.i2c.bus import BusFault, I2CBus, probe
from anse_hw.drivers.i2c.ina219 import INA219
from anse_hw.drivers.i2c.pca9685 import PCA9685
from anse_hw.drivers.i2c.vl53l1x import VL53L1X

__all__ = ["IDENTIFY", "check_device"]

#: Each chip's identity check: why the device at an address is not that chip, or None.
IDENTIFY: dict[str, Callable[[I2CBus, int], str | None]] = {
    BME280.CHIP: BME280.identify,
    INA219.CHIP: INA219.identify,
    PCA9685.CHIP: PCA9685.identify,
    VL53L1X.CHIP: VL53L1X.identify,
}
_NAMES = {
    BME280.CHIP: "BME280",
    INA219.CHIP: "INA219",
    PCA9685.CHIP: "PCA9685",
    VL53L1X.CHIP: "VL53L1X",
}


def check_device(bus: I2CBus, chip: str, address: int) -> str | None:
    """Why `chip` cannot be used at `address` on `bus`, as one sentence, or None."""
    if not probe(bus, [address]):
        return f"nothing answers at 0x{address:02x} (check the address and the wiring)"
    try:
        if chip != PCA9685.CHIP and PCA9685.identify(bus, address) is None:
            return f"the device at 0x{address:02x} is a PCA9685, not the configured {_NAMES[chip]}"
        return IDENTIFY[chip](bus, address)
    except BusFault as exc:
        return str(exc)
