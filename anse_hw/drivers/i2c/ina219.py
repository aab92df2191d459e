"""TI INA219 current/power monitor: bus voltage and current from one chip.

Register map and equations from the datasheet (SBOS448G, §8.6 "Register
Maps", §8.5 "Programming"): six 16-bit big-endian registers; the chip
multiplies the shunt voltage by the calibration register to give the
current register (Equation 4), so the driver programs the calibration from
`shunt_ohms` and `max_current` (Equations 1-3) and then reads amperes
directly, with the sign (current flowing back into the battery is negative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from anse_hw.drivers.i2c.bus import I2CBus, talking_to

__all__ = [
    "INA219",
    "Calibration",
    "PowerReading",
    "bus_voltage",
    "calibrate",
    "current",
    "settings_problem",
    "shunt_voltage",
]

REG_CONFIG = 0x00
REG_SHUNT = 0x01
REG_BUS = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05

#: Config register bits (§8.6.2.1, Figure 19).
CONFIG_RESET = 0x8000
BRNG_32V = 0x2000
#: 12-bit, one sample (532 µs) for both ADCs, as the datasheet's example
#: (Table 3, config 019Fh); at a 20 Hz poll a fresh conversion is always there.
ADC_12BIT = 0b0011
MODE_CONTINUOUS = 0b111

#: The shunt voltage register's LSB and the bus voltage register's (§8.6.3.1-2).
SHUNT_LSB_V = 10e-6
BUS_LSB_V = 0.004
#: Full-scale shunt voltage for PGA gain /1, /2, /4, /8 (Table 4).
PGA_RANGES_V = (0.04, 0.08, 0.16, 0.32)
#: The fixed value in Equation 1 that scales the calibration register.
CAL_SCALE = 0.04096
#: Bit 0 of the calibration register is void; the largest value it holds.
CAL_MAX = 0xFFFE
#: The current register's largest positive value.
CURRENT_MAX_COUNTS = 0x7FFF


@dataclass(frozen=True, slots=True)
class Calibration:
    """What `calibrate` works out: the two registers to write and the scale
    of the current register."""

    config: int
    register: int
    current_lsb: float


@dataclass(frozen=True, slots=True)
class BusVoltage:
    """The bus voltage register: volts, CNVR (a conversion finished since the
    power register was last read) and OVF (the current or power result was
    out of range, so it is no reading)."""

    volts: float
    ready: bool
    overflow: bool


@dataclass(frozen=True, slots=True)
class PowerReading:
    """One read of the chip: the bus voltage (V) and current (A), each None
    when it is not a measurement, with `problem` saying why."""

    voltage: float | None
    current: float | None
    problem: str | None = None


def settings_problem(shunt_ohms: float, max_current: float | None, bus_range: int) -> str | None:
    """Why these settings cannot be programmed, as a sentence, or None."""
    if not (math.isfinite(shunt_ohms) and 0.0001 <= shunt_ohms <= 100):
        return "shunt_ohms must be from 0.0001 to 100"
    if bus_range not in (16, 32):
        return "bus_range must be 16 or 32 (volts)"
    if max_current is None:
        return None
    if not (math.isfinite(max_current) and max_current > 0):
        return "max_current must be a positive number of amperes"
    drop = max_current * shunt_ohms
    if drop > PGA_RANGES_V[-1]:
        return (
            f"max_current × shunt_ohms is {drop * 1000:g} mV, beyond the INA219's "
            f"{PGA_RANGES_V[-1] * 1000:g} mV shunt range"
        )
    return None


def round_up_125(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^n that is at least `value`: a round
    current LSB, as §8.5.1 advises (the datasheet's example rounds its
    minimum 610 µA up to 1 mA)."""
    decade = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        # A relative tolerance, so 0.0001 computed as 0.00010000000000000002
        # is still 100 µA.
        if step * decade >= value * (1 - 1e-9):
            return step * decade
    raise AssertionError("unreachable: 10 × decade exceeds value")


def calibrate(
    shunt_ohms: float, max_current: float | None = None, bus_range: int = 32
) -> Calibration:
    """Config and calibration register values for this shunt (§8.5.1).

    The PGA gets the smallest range that holds `max_current` × shunt (finest
    resolution); without `max_current`, the widest (320 mV), whose current
    is the most the chip can measure through this shunt.  The current LSB is
    the minimum of Equation 2 rounded up to a 1-2-5 value, and never so
    small that the calibration register (Equation 1) would overflow.
    """
    problem = settings_problem(shunt_ohms, max_current, bus_range)
    if problem:
        raise ValueError(problem)
    if max_current is None:
        max_current = PGA_RANGES_V[-1] / shunt_ohms
    drop = max_current * shunt_ohms
    gain = next(i for i, full in enumerate(PGA_RANGES_V) if drop <= full * (1 + 1e-9))
    smallest = max(max_current / CURRENT_MAX_COUNTS, CAL_SCALE / (CAL_MAX * shunt_ohms))
    lsb = round_up_125(smallest)
    register = int(CAL_SCALE / (lsb * shunt_ohms) + 1e-9) & CAL_MAX
    config = (
        (BRNG_32V if bus_range == 32 else 0)
        | gain << 11
        | ADC_12BIT << 7
        | ADC_12BIT << 3
        | MODE_CONTINUOUS
    )
    return Calibration(config, register, lsb)


def _unsigned(raw: bytes) -> int:
    return int.from_bytes(raw[:2], "big")


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw[:2], "big", signed=True)


def bus_voltage(raw: bytes) -> BusVoltage:
    """The bus voltage register (§8.6.3.2): bits 15-3 in 4 mV, CNVR bit 1, OVF bit 0."""
    value = _unsigned(raw)
    return BusVoltage((value >> 3) * BUS_LSB_V, bool(value & 0b10), bool(value & 0b01))


def current(raw: bytes, current_lsb: float) -> float:
    """The current register (§8.6.3.4), two's complement, in amperes."""
    return _signed(raw) * current_lsb


def shunt_voltage(raw: bytes) -> float:
    """The shunt voltage register (§8.6.3.1), two's complement, in volts.
    (Sign-extended by the chip for every PGA range, so one formula holds.)"""
    return _signed(raw) * SHUNT_LSB_V


class INA219:
    """One INA219, read once per call of `read` for all its sensors.

    Nothing is sent at construction: the first `read` programs the chip, so
    a device that is absent at start is a fault to retry, like one that
    vanishes later.  The calibration register is read back at every read
    because the chip forgets it on a brown-out (motors starting can cause
    one), and then reports 0 A forever: a plausible, wrong current.
    """

    CHIP = "ina219"

    def __init__(
        self,
        bus: I2CBus,
        address: int,
        shunt_ohms: float,
        max_current: float | None = None,
        bus_range: int = 32,
    ) -> None:
        self.bus = bus
        self.address = address
        self.calibration = calibrate(shunt_ohms, max_current, bus_range)
        self._configured = False

    def _read(self, register: int) -> bytes:
        with talking_to(self.address):
            return bytes(self.bus.read_i2c_block_data(self.address, register, 2))

    def _write(self, register: int, value: int) -> None:
        with talking_to(self.address):
            self.bus.write_i2c_block_data(self.address, register, [value >> 8, value & 0xFF])

    def configure(self) -> None:
        """Program the config and calibration registers."""
        self._write(REG_CONFIG, self.calibration.config)
        self._write(REG_CALIBRATION, self.calibration.register)
        self._configured = True

    def read(self) -> PowerReading:
        """Bus voltage and current; raises BusFault when the chip does not answer."""
        if not self._configured:
            self.configure()
        if _unsigned(self._read(REG_CALIBRATION)) != self.calibration.register:
            self.configure()
            return PowerReading(
                None, None, "INA219 lost its calibration (power glitch?); reprogrammed"
            )
        bus = bus_voltage(self._read(REG_BUS))
        amperes = current(self._read(REG_CURRENT), self.calibration.current_lsb)
        # Reading the power register clears CNVR, so the next read can tell a
        # fresh conversion from a chip that stopped converting.
        self._read(REG_POWER)
        if not bus.ready:
            return PowerReading(None, None, "INA219 has not converted since the last read")
        if bus.overflow:
            return PowerReading(bus.volts, None, "INA219 current overflow (beyond max_current)")
        return PowerReading(bus.volts, amperes)

    @staticmethod
    def identify(bus: I2CBus, address: int) -> str | None:
        """Why the device at `address` is not an INA219, or None.

        The INA219 has no ID register, so this is a plausibility check,
        with reads only (nothing is written to a chip that may be another's):
        the bits the datasheet defines as always 0 (config bit 14, bus
        voltage bit 2, calibration bit 0) must be 0, and the config register
        must not be 0 (it powers up as 0x399F, and 0 would be "powered down"),
        which a chip answering zeros to unknown registers fails.
        """
        with talking_to(address):
            config = _unsigned(bytes(bus.read_i2c_block_data(address, REG_CONFIG, 2)))
            bus_reg = _unsigned(bytes(bus.read_i2c_block_data(address, REG_BUS, 2)))
            cal = _unsigned(bytes(bus.read_i2c_block_data(address, REG_CALIBRATION, 2)))
        if config == 0 or config & 0x4000 or bus_reg & 0b100 or cal & 1:
            return f"the device at 0x{address:02x} is not an INA219 (its registers do not fit)"
        return None
