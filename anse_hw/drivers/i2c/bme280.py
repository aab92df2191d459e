"""Bosch BME280: temperature, pressure and humidity, compensated on the host.

The chip reports raw ADC counts; every chip carries its own trimming
parameters in non-volatile memory, and the datasheet (BST-BME280-DS002,
§4.2.2 "Trimming parameter readout", §4.2.3 "Compensation formulas", §5.4
"Register description") gives the integer formulas that turn counts into
0.01 °C, Pa/256 and %RH/1024.  They are transcribed here as pure functions
of (trimming, raw counts) and checked against the datasheet's example; the
integer versions are used because they give the same result on every
machine, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from anse_hw.drivers.i2c.bus import I2CBus, talking_to

__all__ = [
    "BME280",
    "EnvReading",
    "RawSample",
    "Trimming",
    "compensate_humidity",
    "compensate_pressure",
    "compensate_temperature",
    "parse_sample",
    "parse_trimming",
]

REG_CALIB_TP = 0x88  # 0x88..0xA1: 26 bytes, dig_T1..dig_P9, (0xA0 unused), dig_H1
REG_CHIP_ID = 0xD0
REG_CALIB_H = 0xE1  # 0xE1..0xE7: dig_H2..dig_H6
REG_CTRL_HUM = 0xF2  # burst from here to 0xFE: controls, status and data
CALIB_TP_LEN = 26
CALIB_H_LEN = 7
BURST_LEN = 13

CHIP_ID = 0x60
#: The BMP280's IDs (samples and mass production): same pins, no humidity.
BMP280_IDS = (0x56, 0x57, 0x58)

#: ×1 oversampling for T, P and H: enough for a robot, and the shortest
#: measurement (§9.1: 9.3 ms at most).
OSRS_X1 = 0b001
MODE_NORMAL = 0b11
#: Normal mode stands by 62.5 ms between measurements (§5.4.6, t_sb = 001):
#: a fresh one for every read at 10-20 Hz, with little self-heating.
STANDBY_62_5MS = 0b001
CTRL_HUM = OSRS_X1
CTRL_MEAS = OSRS_X1 << 5 | OSRS_X1 << 2 | MODE_NORMAL
CONFIG = STANDBY_62_5MS << 5

#: What a data register holds when that measurement was skipped, or none
#: has been made since power-on (§5.4.7-5.4.9).
SKIPPED_20BIT = 0x80000
SKIPPED_16BIT = 0x8000


@dataclass(frozen=True, slots=True)
class Trimming:
    """The chip's trimming parameters dig_T1..dig_H6 (§4.2.2, Table 16)."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int


@dataclass(frozen=True, slots=True)
class RawSample:
    """The three uncompensated ADC values (20, 20 and 16 bits)."""

    adc_t: int
    adc_p: int
    adc_h: int


@dataclass(frozen=True, slots=True)
class EnvReading:
    """Temperature (°C), pressure (hPa) and relative humidity (%), or the
    reason there is none."""

    temperature: float | None
    pressure: float | None
    humidity: float | None
    problem: str | None = None


def _s8(value: int) -> int:
    return value - 256 if value > 127 else value


def parse_trimming(tp: bytes, h: bytes) -> Trimming:
    """Trimming from the 26 bytes at 0x88 and the 7 at 0xE1 (§4.2.2).

    T and P words are little-endian; dig_H4 and dig_H5 are 12-bit values
    sharing the nibbles of 0xE5, their high byte signed.
    """
    words = [int.from_bytes(tp[i : i + 2], "little", signed=True) for i in range(0, 24, 2)]
    t1 = int.from_bytes(tp[0:2], "little")
    p1 = int.from_bytes(tp[6:8], "little")
    return Trimming(
        t1=t1,
        t2=words[1],
        t3=words[2],
        p1=p1,
        p2=words[4],
        p3=words[5],
        p4=words[6],
        p5=words[7],
        p6=words[8],
        p7=words[9],
        p8=words[10],
        p9=words[11],
        h1=tp[25],
        h2=int.from_bytes(h[0:2], "little", signed=True),
        h3=h[2],
        h4=_s8(h[3]) * 16 | (h[4] & 0x0F),
        h5=_s8(h[5]) * 16 | (h[4] >> 4),
        h6=_s8(h[6]),
    )


def parse_sample(data: bytes) -> RawSample:
    """The 8 data bytes 0xF7..0xFE: press msb/lsb/xlsb, temp msb/lsb/xlsb,
    hum msb/lsb (§5.4.7-5.4.9; the xlsb holds bits 3..0 in its high nibble)."""
    adc_p = data[0] << 12 | data[1] << 4 | data[2] >> 4
    adc_t = data[3] << 12 | data[4] << 4 | data[5] >> 4
    adc_h = data[6] << 8 | data[7]
    return RawSample(adc_t, adc_p, adc_h)


def compensate_temperature(trim: Trimming, adc_t: int) -> tuple[int, int]:
    """BME280_compensate_T_int32: (temperature in 0.01 °C, t_fine).

    t_fine carries the temperature into the pressure and humidity formulas.
    """
    var1 = (((adc_t >> 3) - (trim.t1 << 1)) * trim.t2) >> 11
    delta = (adc_t >> 4) - trim.t1
    var2 = (((delta * delta) >> 12) * trim.t3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def _c_div(numerator: int, denominator: int) -> int:
    """Integer division truncating toward zero, as C's `/` (Python's `//` floors)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def compensate_pressure(trim: Trimming, adc_p: int, t_fine: int) -> int:
    """BME280_compensate_P_int64: pressure in Pa as Q24.8 (Pa × 256); 0 when
    the trimming would divide by zero (the datasheet's guard)."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * trim.p6
    var2 = var2 + ((var1 * trim.p5) << 17)
    var2 = var2 + (trim.p4 << 35)
    var1 = ((var1 * var1 * trim.p3) >> 8) + ((var1 * trim.p2) << 12)
    var1 = (((1 << 47) + var1) * trim.p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _c_div(((p << 31) - var2) * 3125, var1)
    var1 = (trim.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (trim.p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (trim.p7 << 4)


def compensate_humidity(trim: Trimming, adc_h: int, t_fine: int) -> int:
    """bme280_compensate_H_int32: relative humidity in % as Q22.10 (%RH × 1024),
    clamped to 0..100 % as the datasheet's formula does."""
    x = t_fine - 76800
    # The datasheet's one expression, in its two factors and the correction.
    scaled = (((adc_h << 14) - (trim.h4 << 20) - (trim.h5 * x)) + 16384) >> 15
    heat = ((((x * trim.h6) >> 10) * (((x * trim.h3) >> 11) + 32768)) >> 10) + 2097152
    v = scaled * ((heat * trim.h2 + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * trim.h1) >> 4)
    v = min(max(v, 0), 419430400)
    return v >> 12


def compensate(trim: Trimming, raw: RawSample) -> EnvReading:
    """All three values in the units the daemon uses (°C, hPa, %)."""
    if raw.adc_t == SKIPPED_20BIT:
        return EnvReading(None, None, None, "BME280 has made no measurement yet")
    centi, t_fine = compensate_temperature(trim, raw.adc_t)
    pascal_256 = compensate_pressure(trim, raw.adc_p, t_fine)
    pressure = pascal_256 / 256 / 100 if raw.adc_p != SKIPPED_20BIT and pascal_256 else None
    humidity = (
        compensate_humidity(trim, raw.adc_h, t_fine) / 1024 if raw.adc_h != SKIPPED_16BIT else None
    )
    return EnvReading(centi / 100, pressure, humidity)


class BME280:
    """One BME280 in normal mode, read by one burst per `read`.

    Nothing is sent at construction; the first `read` checks the chip ID,
    reads the trimming and starts the chip.  Each read takes the control
    registers with the data (one 13-byte burst from 0xF2, which also keeps
    the data registers consistent, §4): a chip that was reset by a power
    glitch is back in sleep mode with stale data, and is set up again.
    """

    CHIP = "bme280"

    def __init__(self, bus: I2CBus, address: int) -> None:
        self.bus = bus
        self.address = address
        self.trimming: Trimming | None = None

    def _block(self, register: int, length: int) -> bytes:
        with talking_to(self.address):
            return bytes(self.bus.read_i2c_block_data(self.address, register, length))

    def configure(self) -> None:
        """Read the chip's trimming and start normal mode."""
        trimming = parse_trimming(
            self._block(REG_CALIB_TP, CALIB_TP_LEN), self._block(REG_CALIB_H, CALIB_H_LEN)
        )
        with talking_to(self.address):
            # ctrl_hum takes effect only when ctrl_meas is written after it (§5.4.3).
            self.bus.write_byte_data(self.address, REG_CTRL_HUM, CTRL_HUM)
            self.bus.write_byte_data(self.address, REG_CTRL_HUM + 3, CONFIG)
            self.bus.write_byte_data(self.address, REG_CTRL_HUM + 2, CTRL_MEAS)
        self.trimming = trimming

    def read(self) -> EnvReading:
        """The latest measurement; raises BusFault when the chip does not answer.

        A chip that is not a BME280 is no reading (and is checked again at
        the next read), never an exception: `--check` refuses it before the
        daemon runs, and at run time a wrong chip is a sensor fault."""
        if self.trimming is None:
            problem = self.identify(self.bus, self.address)
            if problem:
                return EnvReading(None, None, None, problem)
            self.configure()
        assert self.trimming is not None
        burst = self._block(REG_CTRL_HUM, BURST_LEN)
        if burst[0] & 0b111 != CTRL_HUM or burst[2] != CTRL_MEAS:
            self.configure()
            return EnvReading(None, None, None, "BME280 was reset (power glitch?); restarted")
        return compensate(self.trimming, parse_sample(burst[5:13]))

    @staticmethod
    def identify(bus: I2CBus, address: int) -> str | None:
        """Why the device at `address` is not a BME280 (its chip ID register), or None."""
        with talking_to(address):
            chip_id = bus.read_byte_data(address, REG_CHIP_ID)
        if chip_id == CHIP_ID:
            return None
        if chip_id in BMP280_IDS:
            return f"the device at 0x{address:02x} is a BMP280 (no humidity), not a BME280"
        return f"the device at 0x{address:02x} has chip ID 0x{chip_id:02x}, not the BME280's 0x60"
