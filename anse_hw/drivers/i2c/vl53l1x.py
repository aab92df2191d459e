"""ST VL53L1X time-of-flight distance sensor, through ST's Ultra Lite Driver
(ULD) register sequence.

Why the VL53L1X and not the VL53L0X: the L0X has no published register
map, and bringing it up takes ST's full API (SPAD management, reference
calibration, undocumented tuning writes).  For the L1X, ST publishes the
ULD (STSW-IMG009, user manual UM2510): one 91-byte default configuration
written at 0x2D..0x87, a VHV calibration run, then a result block at 0x89.
Register addresses, the default configuration and the range status table
below are the ULD's (VL53L1X_api.c: `VL51L1X_DEFAULT_CONFIGURATION`,
`status_rtn`, `VL53L1X_SensorInit`, `VL53L1X_GetResult`).

Registers have 16-bit addresses, so every transfer is an I2C combined
message (`read_reg16`/`write_reg16`), not an SMBus command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from anse_hw.drivers.i2c.bus import I2CBus, read_reg16, write_reg16

__all__ = ["VL53L1X", "RangeReading", "data_ready", "parse_result", "range_status"]

REG_VHV_LOOP_BOUND = 0x0008
REG_VHV_START = 0x000B
REG_CONFIG_START = 0x002D
REG_GPIO_HV_MUX_CTRL = 0x0030
REG_GPIO_TIO_HV_STATUS = 0x0031
REG_INTERRUPT_CLEAR = 0x0086
REG_MODE_START = 0x0087
REG_RESULT = 0x0089  # RESULT__RANGE_STATUS, the start of the 17-byte result block
RESULT_LEN = 17
REG_FIRMWARE_STATUS = 0x00E5
REG_MODEL_ID = 0x010F

MODEL_ID = 0xEACC
START_RANGING = 0x40
STOP_RANGING = 0x00

#: ULD's default configuration for 0x2D..0x87: long distance mode (up to
#: 4 m), 100 ms timing budget, interrupt on "new sample ready".
DEFAULT_CONFIGURATION = bytes.fromhex(
    "00 00 00 01 02 00 02 08 00 08 10 01 01 00 00 00 00 ff 00 0f 00 00 00 00 00 20"
    " 0b 00 00 02 0a 21 00 00 05 00 00 00 00 c8 00 00 38 ff 01 00 08 00 00 01 cc 0f"
    " 01 f1 0d 01 68 00 80 08 b8 00 00 00 00 0f 89 00 00 00 00 00 00 00 01 0f 0d 0e"
    " 0e 00 00 02 c7 ff 9b 00 00 00 01 00 00"
)

#: ULD `status_rtn`: the raw RESULT__RANGE_STATUS (bits 4..0) to the range
#: status UM2510 documents; raw values past the table are 255 ("none").
STATUS_RTN = (
    255,
    255,
    255,
    5,
    2,
    4,
    1,
    7,
    3,
    0,
    255,
    255,
    9,
    13,
    255,
    255,
    255,
    255,
    10,
    6,
    255,
    255,
    11,
    12,
)
RANGE_VALID = 0
#: What each status means (UM2510 Table "range status"; the rest are the
#: full API's VL53L1_RANGESTATUS_* names).  Only RANGE_VALID is a reading.
STATUS_TEXT = {
    1: "sigma fail (the measurement is too noisy)",
    2: "signal fail (target too weak or too far)",
    3: "minimum range clipped (target very close)",
    4: "out of bounds (phase outside the valid range)",
    5: "hardware fail",
    6: "valid but without wrap-around check",
    7: "wrap-around (target beyond the unambiguous range)",
    8: "processing fail",
    9: "crosstalk signal fail",
    10: "synchronisation interrupt (first measurement after start)",
    11: "merged pulse",
    12: "target present but signal too weak",
    13: "minimum range fail",
    255: "no range status",
}
#: The ULD's VHV bounds after its calibration run: "two bounds VHV", and
#: start VHV from the previous temperature.
VHV_LOOP_BOUND = 0x09
#: Long mode measures every 100 ms; no new sample for this long means the
#: chip stopped ranging (a reset by a power glitch) and is set up again.
STALL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RangeReading:
    """One measurement: the distance in cm when the range status says it is
    valid, else None, with the ULD range `status` and `problem` saying why."""

    distance_cm: float | None
    status: int
    problem: str | None = None


def range_status(raw: int) -> int:
    """The ULD range status for a RESULT__RANGE_STATUS byte."""
    code = raw & 0x1F
    return STATUS_RTN[code] if code < len(STATUS_RTN) else 255


def parse_result(block: bytes) -> RangeReading:
    """The 17-byte result block from 0x89 (ULD `VL53L1X_GetResult`): status
    in byte 0, the crosstalk-corrected distance in mm at bytes 13-14."""
    status = range_status(block[0])
    millimetres = block[13] << 8 | block[14]
    if status != RANGE_VALID:
        return RangeReading(
            None, status, "VL53L1X " + STATUS_TEXT.get(status, f"range status {status}")
        )
    return RangeReading(millimetres / 10, status)


def data_ready(mux_ctrl: int, tio_status: int) -> bool:
    """Whether a new sample waits (ULD `CheckForDataReady`): the interrupt
    line's level in GPIO__TIO_HV_STATUS bit 0 equals its active level, which
    GPIO_HV_MUX__CTRL bit 4 sets (0: active high)."""
    active = 0 if mux_ctrl & 0x10 else 1
    return (tio_status & 1) == active


class VL53L1X:
    """One VL53L1X ranging continuously; `read` never waits for it.

    Bring-up is the ULD's `SensorInit`, split so that no call blocks:
    the first `read` writes the configuration and starts a VHV calibration
    measurement; the read that finds it done sets the VHV bounds and starts
    ranging.  `read` returns None while no new sample is ready.
    """

    CHIP = "vl53l1x"

    def __init__(self, bus: I2CBus, address: int = 0x29) -> None:
        self.bus = bus
        self.address = address
        self._state = "off"  # off -> calibrating -> ranging
        self._last_sample = 0.0

    def _byte(self, register: int) -> int:
        return read_reg16(self.bus, self.address, register, 1)[0]

    def _write(self, register: int, *values: int) -> None:
        write_reg16(self.bus, self.address, register, values)

    def _ready(self) -> bool:
        # GPIO_HV_MUX__CTRL and GPIO__TIO_HV_STATUS are adjacent: one transfer.
        mux, status = read_reg16(self.bus, self.address, REG_GPIO_HV_MUX_CTRL, 2)
        return data_ready(mux, status)

    def _start(self) -> None:
        """Write the default configuration and start the calibration run."""
        self._write(REG_CONFIG_START, *DEFAULT_CONFIGURATION)
        self._write(REG_MODE_START, START_RANGING)
        self._state = "calibrating"
        self._last_sample = time.monotonic()

    def _finish_calibration(self) -> None:
        self._write(REG_INTERRUPT_CLEAR, 0x01)
        self._write(REG_MODE_START, STOP_RANGING)
        self._write(REG_VHV_LOOP_BOUND, VHV_LOOP_BOUND)
        self._write(REG_VHV_START, 0x00)
        self._write(REG_MODE_START, START_RANGING)
        self._state = "ranging"

    def read(self) -> RangeReading | None:
        """The new sample, or None if there is none yet; raises BusFault."""
        if self._state == "off":
            if not self._byte(REG_FIRMWARE_STATUS) & 1:
                return None  # still booting (t_BOOT, 1.2 ms at most)
            self._start()
            return None
        if not self._ready():
            if time.monotonic() - self._last_sample > STALL_SECONDS:
                self._state = "off"
                return RangeReading(None, 255, "VL53L1X stopped ranging (reset?); restarting it")
            return None
        self._last_sample = time.monotonic()
        if self._state == "calibrating":
            self._finish_calibration()
            return None
        reading = parse_result(read_reg16(self.bus, self.address, REG_RESULT, RESULT_LEN))
        self._write(REG_INTERRUPT_CLEAR, 0x01)
        return reading

    def stop(self) -> None:
        """Stop ranging (the laser is off until the next `read` restarts it)."""
        self._write(REG_MODE_START, STOP_RANGING)
        self._state = "off"

    @staticmethod
    def identify(bus: I2CBus, address: int) -> str | None:
        """Why the device at `address` is not a VL53L1X (its model ID), or None."""
        model = int.from_bytes(read_reg16(bus, address, REG_MODEL_ID, 2), "big")
        if model == MODEL_ID:
            return None
        return f"the device at 0x{address:02x} has model ID 0x{model:04x}, not the VL53L1X's 0xEACC"
