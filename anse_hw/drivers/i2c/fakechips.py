"""Register-level fakes of the chips in this package, for `fakebus`.

Each fake answers I2C transfers as its datasheet says the chip does: a
write sets the register pointer and stores data, a read returns registers
from the pointer on.  The physical quantities (volts, amperes, degrees,
centimetres) are set with `update`, and the fake turns them into the raw
registers the chip would hold, with the chip's own arithmetic (the INA219
multiplies its shunt voltage by whatever calibration the driver wrote), so
a driver that programs the chip wrongly reads wrong values here too.
Their defaults are the datasheets' worked examples.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from anse_hw.drivers.i2c import bme280, ina219, pca9685, vl53l1x

__all__ = ["FAKES", "FakeBME280", "FakeChip", "FakeINA219", "FakePCA9685", "FakeVL53L1X"]


class FakeChip(ABC):
    """One device on the fake bus.  `VALUES` names the physical values a
    fake file may set, each with its allowed range and default."""

    CHIP: ClassVar[str]
    VALUES: ClassVar[dict[str, tuple[float, float, float]]] = {}

    def __init__(self) -> None:
        self.values: dict[str, float] = {key: spec[2] for key, spec in self.VALUES.items()}

    @classmethod
    def value_problem(cls, key: str, value: Any) -> str | None:
        """Why `key: value` cannot be set on this chip, or None."""
        if key not in cls.VALUES:
            known = ", ".join(sorted(cls.VALUES)) or "none"
            return f"{cls.CHIP} has no value {key!r} (it has: {known})"
        low, high, _ = cls.VALUES[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return f"{key} must be a number"
        if not low <= value <= high:
            return f"{key} must be from {low:g} to {high:g}"
        return None

    @abstractmethod
    def power_on(self) -> None:
        """Registers as after a power cycle (a brown-out): what a driver must
        notice and set up again."""

    def update(self, values: dict[str, float]) -> None:
        """Set physical values (already checked with `value_problem`);
        those not given go back to their defaults."""
        self.values = {key: float(values.get(key, spec[2])) for key, spec in self.VALUES.items()}

    def outputs(self) -> dict[str, Any] | None:
        """What the chip drives (for the fake bus's state file); None: it drives nothing."""
        return None

    @abstractmethod
    def write(self, data: bytes) -> None:
        """One I2C write transfer (register pointer, then data)."""

    @abstractmethod
    def read(self, length: int) -> bytes:
        """One I2C read transfer from the current register pointer."""


class FakeINA219(FakeChip):
    """INA219 with 16-bit registers; defaults are the conditions of the
    datasheet's Table 3 example (10 A through 2 mΩ, 11.98 V on the bus)."""

    CHIP = "ina219"
    VALUES: ClassVar[dict[str, tuple[float, float, float]]] = {
        "bus_voltage": (0.0, 32.76, 11.98),
        "current": (-1000.0, 1000.0, 10.0),
        "shunt_ohms": (0.0001, 100.0, 0.002),
    }
    POWER_ON_CONFIG = 0x399F

    def __init__(self) -> None:
        super().__init__()
        self.pointer = 0
        self.power_on()

    def power_on(self) -> None:
        """Registers as after power-on or a reset: uncalibrated, so the
        current register reads 0 until a driver writes the calibration."""
        self.config = self.POWER_ON_CONFIG
        self.calibration = 0

    def write(self, data: bytes) -> None:
        self.pointer = data[0]
        if len(data) < 3:
            return
        value = data[1] << 8 | data[2]
        if self.pointer == ina219.REG_CONFIG:
            if value & ina219.CONFIG_RESET:
                self.power_on()
                return
            self.config = value
        elif self.pointer == ina219.REG_CALIBRATION:
            self.calibration = value & ina219.CAL_MAX

    def _shunt_counts(self) -> tuple[int, bool]:
        full_scale = ina219.PGA_RANGES_V[(self.config >> 11) & 0b11]
        volts = self.values["current"] * self.values["shunt_ohms"]
        limit = round(full_scale / ina219.SHUNT_LSB_V)
        counts = round(volts / ina219.SHUNT_LSB_V)
        return max(-limit, min(limit, counts)), abs(counts) > limit

    def _current_counts(self) -> tuple[int, bool]:
        shunt, overflow = self._shunt_counts()
        counts = int(shunt * self.calibration / 4096)  # Equation 4, truncated
        return max(-0x8000, min(0x7FFF, counts)), overflow or not -0x8000 <= counts <= 0x7FFF

    def _bus_counts(self) -> int:
        full = 16.0 if not self.config & ina219.BRNG_32V else 32.76
        return round(min(self.values["bus_voltage"], full) / ina219.BUS_LSB_V)

    def register(self, pointer: int) -> int:
        """The 16-bit content of a register as the chip computes it now."""
        if pointer == ina219.REG_CONFIG:
            return self.config
        if pointer == ina219.REG_SHUNT:
            return self._shunt_counts()[0] & 0xFFFF
        if pointer == ina219.REG_BUS:
            # The fake converts instantly: CNVR is set whenever it converts at all.
            converting = self.config & 0b100 and self.config & 0b011
            overflow = self._current_counts()[1]
            return self._bus_counts() << 3 | (0b10 if converting else 0) | int(overflow)
        if pointer == ina219.REG_POWER:
            return abs(self._current_counts()[0]) * self._bus_counts() // 5000
        if pointer == ina219.REG_CURRENT:
            return self._current_counts()[0] & 0xFFFF
        if pointer == ina219.REG_CALIBRATION:
            return self.calibration
        return 0

    def read(self, length: int) -> bytes:
        word = self.register(self.pointer).to_bytes(2, "big")
        return (word * length)[:length]


def _bisect(function: Any, target: float, low: int, high: int) -> int:
    """The integer in low..high whose `function` value is nearest `target`,
    for a function monotonic over that range (either way)."""
    rising = function(high) >= function(low)
    while high - low > 1:
        middle = (low + high) // 2
        if (function(middle) < target) == rising:
            low = middle
        else:
            high = middle
    return min((low, high), key=lambda raw: abs(function(raw) - target))


def _pack20(value: int) -> bytes:
    """A 20-bit ADC value as its msb, lsb and xlsb registers."""
    return bytes((value >> 12, value >> 4 & 0xFF, (value & 0xF) << 4))


class FakeBME280(FakeChip):
    """BME280 holding the trimming of the datasheet's compensation example
    (BMP280 datasheet §3.12, which the BME280 shares for T and P) and
    typical humidity trimming.  Physical values given in the fake file are
    turned into the raw ADC counts that compensate to them."""

    CHIP = "bme280"
    VALUES: ClassVar[dict[str, tuple[float, float, float]]] = {
        "temperature": (-40.0, 85.0, 25.08),
        "pressure": (300.0, 1100.0, 25767233 / 25600),
        "humidity": (0.0, 100.0, 51.958984375),
    }
    #: The example's raw ADC values (adc_T, adc_P from the datasheet; adc_H
    #: gives 51.96 %RH with TRIM_H), answered while the values are the defaults.
    DEFAULT_RAW = bme280.RawSample(519888, 415148, 30000)
    TRIM_TP = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
    TRIM_H = (75, 362, 0, 324, 0, 30)

    def __init__(self) -> None:
        super().__init__()
        self.memory = bytearray(256)
        self.memory[bme280.REG_CHIP_ID] = bme280.CHIP_ID
        words = b"".join(
            v.to_bytes(2, "little", signed=i not in (0, 3)) for i, v in enumerate(self.TRIM_TP)
        )
        self.memory[bme280.REG_CALIB_TP : bme280.REG_CALIB_TP + 24] = words
        h1, h2, h3, h4, h5, h6 = self.TRIM_H
        self.memory[0xA1] = h1
        self.memory[bme280.REG_CALIB_H : bme280.REG_CALIB_H + 7] = h2.to_bytes(
            2, "little", signed=True
        ) + bytes((h3, h4 >> 4 & 0xFF, h4 & 0x0F | (h5 & 0x0F) << 4, h5 >> 4 & 0xFF, h6 & 0xFF))
        self.trimming = bme280.parse_trimming(
            bytes(self.memory[0x88:0xA2]), bytes(self.memory[0xE1:0xE8])
        )
        self.pointer = 0
        self.power_on()

    def power_on(self) -> None:
        """Controls as after power-on or a soft reset: asleep, nothing measured."""
        self.memory[0xF2:0xF6] = bytes(4)
        self.measured = False

    def raw(self) -> bme280.RawSample:
        """The ADC counts that compensate to the current values."""
        if all(self.values[key] == spec[2] for key, spec in self.VALUES.items()):
            return self.DEFAULT_RAW
        trim = self.trimming
        adc_t = _bisect(
            lambda r: bme280.compensate_temperature(trim, r)[0] / 100,
            self.values["temperature"],
            0,
            0xFFFFF,
        )
        t_fine = bme280.compensate_temperature(trim, adc_t)[1]
        adc_p = _bisect(
            lambda r: bme280.compensate_pressure(trim, r, t_fine) / 25600,
            self.values["pressure"],
            0,
            0xFFFFF,
        )
        adc_h = _bisect(
            lambda r: bme280.compensate_humidity(trim, r, t_fine) / 1024,
            self.values["humidity"],
            0,
            0xFFFF,
        )
        return bme280.RawSample(adc_t, adc_p, adc_h)

    def _data(self) -> bytes:
        """0xF7..0xFE; a measurement skipped by its oversampling setting (or
        none made since reset) reads 0x80000 / 0x8000 (§5.4.7-5.4.9)."""
        ctrl_meas = self.memory[0xF4]
        raw = self.raw()
        adc_p = raw.adc_p if self.measured and ctrl_meas >> 2 & 0b111 else bme280.SKIPPED_20BIT
        adc_t = raw.adc_t if self.measured and ctrl_meas >> 5 else bme280.SKIPPED_20BIT
        adc_h = raw.adc_h if self.measured and self.memory[0xF2] & 0b111 else bme280.SKIPPED_16BIT
        return _pack20(adc_p) + _pack20(adc_t) + adc_h.to_bytes(2, "big")

    def write(self, data: bytes) -> None:
        # Multi-byte writes are (register, value) pairs (§6.2.1).
        self.pointer = data[0]
        for register, value in zip(data[0::2], data[1::2], strict=False):
            if register == 0xE0 and value == 0xB6:
                self.power_on()
                return
            if register in (0xF2, 0xF4, 0xF5):
                self.memory[register] = value
            if register == 0xF4 and value & 0b11:
                self.measured = True  # the fake measures instantly

    def read(self, length: int) -> bytes:
        snapshot = bytearray(self.memory)
        snapshot[0xF7:0xFF] = self._data()
        start = self.pointer
        self.pointer = (start + length) & 0xFF
        return bytes(snapshot[(start + i) & 0xFF] for i in range(length))


class FakeVL53L1X(FakeChip):
    """VL53L1X with 16-bit register addresses that ranges instantly once
    started: every poll finds a new sample.  `status` is the ULD range
    status to report (0 valid, 2 signal fail, 4 out of bounds, ...)."""

    CHIP = "vl53l1x"
    VALUES: ClassVar[dict[str, tuple[float, float, float]]] = {
        "distance_cm": (0.0, 400.0, 50.0),
        "status": (0, 255, 0),
    }
    RAW_FOR_STATUS: ClassVar[dict[int, int]] = {
        status: raw for raw, status in reversed(list(enumerate(vl53l1x.STATUS_RTN)))
    }

    def __init__(self) -> None:
        super().__init__()
        self.pointer = 0
        self.power_on()

    def power_on(self) -> None:
        """Booted, unconfigured, not ranging."""
        self.memory = bytearray(0x200)
        self.memory[vl53l1x.REG_MODEL_ID : vl53l1x.REG_MODEL_ID + 2] = b"\xea\xcc"
        self.memory[vl53l1x.REG_FIRMWARE_STATUS] = 0x01

    @classmethod
    def value_problem(cls, key: str, value: Any) -> str | None:
        problem = super().value_problem(key, value)
        if problem is None and key == "status" and value not in cls.RAW_FOR_STATUS:
            return f"status must be a ULD range status: {sorted(cls.RAW_FOR_STATUS)}"
        return problem

    def _ranging(self) -> bool:
        return self.memory[vl53l1x.REG_MODE_START] == vl53l1x.START_RANGING

    def _snapshot(self) -> bytearray:
        snapshot = bytearray(self.memory)
        ready = self._ranging()
        active = 0 if snapshot[vl53l1x.REG_GPIO_HV_MUX_CTRL] & 0x10 else 1
        level = active if ready else 1 - active
        snapshot[vl53l1x.REG_GPIO_TIO_HV_STATUS] = (snapshot[0x31] & 0xFE) | level
        result = vl53l1x.REG_RESULT
        snapshot[result] = self.RAW_FOR_STATUS[int(self.values["status"])]
        millimetres = round(self.values["distance_cm"] * 10)
        snapshot[result + 13 : result + 15] = millimetres.to_bytes(2, "big")
        return snapshot

    def write(self, data: bytes) -> None:
        self.pointer = data[0] << 8 | data[1] if len(data) >= 2 else self.pointer
        for offset, value in enumerate(data[2:]):
            register = self.pointer + offset
            if register < len(self.memory) and register not in (0x010F, 0x0110, 0xE5):
                self.memory[register] = value

    def read(self, length: int) -> bytes:
        snapshot = self._snapshot()
        start = self.pointer
        self.pointer += length
        return bytes(snapshot[i] if i < len(snapshot) else 0 for i in range(start, start + length))


class FakePCA9685(FakeChip):
    """PCA9685 as the datasheet describes its registers: auto-increment only
    with MODE1.AI, PRE_SCALE writable only asleep, outputs off while asleep.
    `pulse_us(channel)` is what a servo on that channel would see."""

    CHIP = "pca9685"

    def __init__(self) -> None:
        super().__init__()
        self.pointer = 0
        self.power_on()

    def power_on(self) -> None:
        """Asleep at 200 Hz with every output off: servos limp."""
        self.memory = bytearray(256)
        self.memory[pca9685.REG_MODE1] = pca9685.MODE1_SLEEP | pca9685.MODE1_ALLCALL
        self.memory[pca9685.REG_MODE2] = pca9685.MODE2_OUTDRV
        self.memory[pca9685.REG_SUBADR1 : pca9685.REG_SUBADR1 + 4] = pca9685.SIGNATURE
        self.memory[pca9685.REG_PRE_SCALE] = 0x1E
        for channel in range(pca9685.CHANNELS):
            self.memory[pca9685.REG_LED0_ON_L + 4 * channel + 3] = 0x10  # full off

    def _auto_increment(self) -> bool:
        return bool(self.memory[pca9685.REG_MODE1] & pca9685.MODE1_AI)

    def _store(self, register: int, value: int) -> None:
        mode1 = self.memory[pca9685.REG_MODE1]
        if register == pca9685.REG_PRE_SCALE:
            if mode1 & pca9685.MODE1_SLEEP:
                self.memory[register] = max(pca9685.PRESCALE_MIN, value)
            return
        if register == pca9685.REG_MODE1:
            # Writing 1 to RESTART clears it (restarts PWM); 0 leaves it.
            value &= ~pca9685.MODE1_RESTART & 0xFF
        self.memory[register] = value

    def write(self, data: bytes) -> None:
        self.pointer = data[0]
        for value in data[1:]:
            self._store(self.pointer, value)
            if self._auto_increment():
                self.pointer = (self.pointer + 1) & 0xFF

    def outputs(self) -> dict[str, Any]:
        """Every channel's ON and OFF counts and pulse width (None: not pulsing)."""
        channels = {}
        for channel in range(pca9685.CHANNELS):
            on, off = self.counts(channel)
            pulse = self.pulse_us(channel)
            channels[str(channel)] = {
                "on": on,
                "off": off,
                "pulse_us": None if pulse is None else round(pulse, 1),
            }
        return {"channels": channels}

    def read(self, length: int) -> bytes:
        out = []
        for _ in range(length):
            out.append(self.memory[self.pointer])
            if self._auto_increment():
                self.pointer = (self.pointer + 1) & 0xFF
        return bytes(out)

    def counts(self, channel: int) -> tuple[int, int]:
        """The raw 13-bit ON and OFF values (bit 12 is "full on/off")."""
        base = pca9685.REG_LED0_ON_L + 4 * channel
        regs = self.memory[base : base + 4]
        return regs[0] | regs[1] << 8, regs[2] | regs[3] << 8

    def pulse_us(self, channel: int) -> float | None:
        """The pulse width on `channel` in µs, or None when it is not pulsing."""
        on, off = self.counts(channel)
        if self.memory[pca9685.REG_MODE1] & pca9685.MODE1_SLEEP or off & 0x1000 or on & 0x1000:
            return None
        ticks = (off - on) % pca9685.TICKS
        prescale = self.memory[pca9685.REG_PRE_SCALE]
        return ticks * (prescale + 1) / pca9685.OSCILLATOR_HZ * 1e6


#: The fakes by the name a fake file gives in "device".
FAKES: dict[str, type[FakeChip]] = {
    fake.CHIP: fake for fake in (FakeBME280, FakeINA219, FakePCA9685, FakeVL53L1X)
}
