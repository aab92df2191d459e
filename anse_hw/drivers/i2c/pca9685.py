"""NXP PCA9685 16-channel PWM controller, driving hobby servos at 50 Hz.

From the datasheet (PCA9685 Rev. 4, §7.3 "Register definitions"): each
channel has 12-bit ON and OFF counts within a 4096-tick period; the period
comes from PRE_SCALE (§7.3.5, Equation 1), which can only be written while
MODE1.SLEEP is set; waking needs 500 µs for the oscillator before RESTART
(§7.3.1.1).  A servo's angle is a pulse width (1-2 ms by default, as
gpiozero's AngularServo) repeated every 20 ms.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from anse_hw.drivers.i2c.bus import I2CBus, talking_to

__all__ = [
    "PCA9685",
    "Servo",
    "ServoRange",
    "actual_frequency",
    "channel_bytes",
    "prescale_for",
    "pulse_counts",
]

REG_MODE1 = 0x00
REG_MODE2 = 0x01
REG_SUBADR1 = 0x02  # SUBADR1..3 and ALLCALLADR: 0x02..0x05
REG_LED0_ON_L = 0x06
REG_PRE_SCALE = 0xFE

MODE1_RESTART = 0x80
MODE1_AI = 0x20  # register auto-increment, for 4-byte channel writes
MODE1_SLEEP = 0x10
MODE1_ALLCALL = 0x01
MODE2_OUTDRV = 0x04  # totem-pole outputs, what servo signal lines want
FULL_OFF = 0x1000  # bit 4 of LEDn_OFF_H: the output is held low

#: The power-on values of SUBADR1..3 and ALLCALLADR (§7.3.6-7.3.7); the
#: chip has no ID register, and these are rarely changed.
SIGNATURE = bytes((0xE2, 0xE4, 0xE8, 0xE0))
OSCILLATOR_HZ = 25_000_000
TICKS = 4096
#: PRE_SCALE's hardware limits (§7.3.5: values below 3 are forced to 3).
PRESCALE_MIN = 3
PRESCALE_MAX = 255
OSCILLATOR_START_S = 0.0005
CHANNELS = 16


def prescale_for(frequency: float, oscillator_hz: float = OSCILLATOR_HZ) -> int:
    """PRE_SCALE for an update rate (Equation 1): round(osc / (4096 × rate)) − 1.
    50 Hz from 25 MHz gives 121; the datasheet's 200 Hz example gives 30 (0x1E)."""
    value = round(oscillator_hz / (TICKS * frequency)) - 1
    if not PRESCALE_MIN <= value <= PRESCALE_MAX:
        raise ValueError(f"{frequency:g} Hz is outside what the PCA9685 can generate")
    return value


def actual_frequency(prescale: int, oscillator_hz: float = OSCILLATOR_HZ) -> float:
    """The rate a PRE_SCALE value really gives (121: 50.03 Hz, not 50)."""
    return oscillator_hz / (TICKS * (prescale + 1))


def pulse_counts(
    pulse_us: float, prescale: int, oscillator_hz: float = OSCILLATOR_HZ
) -> tuple[int, int]:
    """(ON, OFF) counts for a pulse of `pulse_us` starting at tick 0, from
    the real period PRE_SCALE gives, so 1500 µs is 1500 µs at the pin."""
    ticks = round(pulse_us * 1e-6 * oscillator_hz / (prescale + 1))
    if not 0 <= ticks < TICKS:
        raise ValueError(f"a {pulse_us:g} µs pulse does not fit in one PWM period")
    return 0, ticks


def channel_bytes(on: int, off: int) -> list[int]:
    """LEDn_ON_L, _ON_H, _OFF_L, _OFF_H for counts (§7.3.3, Table 7)."""
    return [on & 0xFF, on >> 8, off & 0xFF, off >> 8]


@dataclass(frozen=True, slots=True)
class ServoRange:
    """A servo's travel: `min_angle`..`max_angle` degrees map linearly to
    `min_pulse_us`..`max_pulse_us`.  The defaults are gpiozero's pulse widths
    over a 0-180° servo; many SG90s want 500-2400 µs for their full travel."""

    min_angle: float = 0.0
    max_angle: float = 180.0
    min_pulse_us: float = 1000.0
    max_pulse_us: float = 2000.0

    def problem(self) -> str | None:
        """Why this range is unusable, as a sentence, or None."""
        values = (self.min_angle, self.max_angle, self.min_pulse_us, self.max_pulse_us)
        if not all(math.isfinite(v) for v in values):
            return "servo angles and pulse widths must be finite numbers"
        if self.min_angle >= self.max_angle:
            return "min_angle must be below max_angle"
        if not 0 < self.min_pulse_us < self.max_pulse_us <= 3000:
            return "pulse widths must satisfy 0 < min_pulse_us < max_pulse_us <= 3000"
        return None

    def pulse_us(self, angle: float) -> float:
        """The pulse width for `angle`; ValueError outside the range (a
        command beyond the servo's travel is refused, never clamped)."""
        if not (math.isfinite(angle) and self.min_angle <= angle <= self.max_angle):
            raise ValueError(f"angle {angle:g} is outside {self.min_angle:g}..{self.max_angle:g}°")
        share = (angle - self.min_angle) / (self.max_angle - self.min_angle)
        return self.min_pulse_us + share * (self.max_pulse_us - self.min_pulse_us)


class PCA9685:
    """One PCA9685 board, shared by the servos on its channels.

    Nothing is sent at construction.  Each command first checks MODE1: a
    board reset by a power glitch wakes up asleep (outputs off, servos
    limp) at 200 Hz, and is set up again before the command is sent.
    """

    CHIP = "pca9685"

    def __init__(self, bus: I2CBus, address: int = 0x40, frequency: float = 50.0) -> None:
        self.bus = bus
        self.address = address
        self.prescale = prescale_for(frequency)
        # Servos on one board may be commanded from different threads; the
        # check-and-set-up before each command must not interleave.
        self._lock = threading.Lock()

    def configure(self) -> None:
        """Set the update rate (asleep, as PRE_SCALE demands), then wake and restart."""
        with talking_to(self.address):
            old = self.bus.read_byte_data(self.address, REG_MODE1)
            asleep = (old & ~MODE1_RESTART & 0xFF) | MODE1_SLEEP
            self.bus.write_byte_data(self.address, REG_MODE1, asleep)
            self.bus.write_byte_data(self.address, REG_PRE_SCALE, self.prescale)
            self.bus.write_byte_data(self.address, REG_MODE2, MODE2_OUTDRV)
            awake = (asleep & ~MODE1_SLEEP) | MODE1_AI
            self.bus.write_byte_data(self.address, REG_MODE1, awake)
            time.sleep(OSCILLATOR_START_S)
            self.bus.write_byte_data(self.address, REG_MODE1, awake | MODE1_RESTART)

    def _ensure_running(self) -> None:
        with talking_to(self.address):
            mode1 = self.bus.read_byte_data(self.address, REG_MODE1)
            prescale = self.bus.read_byte_data(self.address, REG_PRE_SCALE)
        if mode1 & MODE1_SLEEP or not mode1 & MODE1_AI or prescale != self.prescale:
            self.configure()

    def _write_channel(self, channel: int, on: int, off: int) -> None:
        if not 0 <= channel < CHANNELS:
            raise ValueError(f"channel {channel} is not 0..{CHANNELS - 1}")
        with self._lock:
            self._ensure_running()
            with talking_to(self.address):
                self.bus.write_i2c_block_data(
                    self.address, REG_LED0_ON_L + 4 * channel, channel_bytes(on, off)
                )

    def set_pulse(self, channel: int, pulse_us: float) -> None:
        """Drive `channel` with a pulse of `pulse_us` every period."""
        self._write_channel(channel, *pulse_counts(pulse_us, self.prescale))

    def release(self, channel: int) -> None:
        """Hold `channel` low: the servo stops being driven (goes limp)."""
        self._write_channel(channel, 0, FULL_OFF)

    @staticmethod
    def identify(bus: I2CBus, address: int) -> str | None:
        """Why the device at `address` is not a PCA9685 (its power-on
        sub-addresses), or None.  Reads only, one byte at a time (auto-
        increment may be off)."""
        with talking_to(address):
            found = bytes(bus.read_byte_data(address, REG_SUBADR1 + i) for i in range(4))
        if found == SIGNATURE:
            return None
        return (
            f"the device at 0x{address:02x} does not look like a PCA9685 (sub-address "
            f"registers {found.hex(' ')}, expected {SIGNATURE.hex(' ')})"
        )


class Servo:
    """A servo on one PCA9685 channel: `move(angle)`, and `safe()` to go to
    the safe angle (what SIGTERM, --safe-stop and faults ask for).

    Nothing is sent at construction; the caller moves it to safe first, as
    every actuator starts in its safe state.
    """

    def __init__(
        self,
        board: PCA9685,
        channel: int,
        travel: ServoRange | None = None,
        safe_angle: float = 90.0,
    ) -> None:
        self.board = board
        self.channel = channel
        self.travel = travel or ServoRange()
        problem = self.travel.problem()
        if problem:
            raise ValueError(problem)
        self.travel.pulse_us(safe_angle)  # the safe angle must be within travel
        self.safe_angle = safe_angle
        self.angle: float | None = None

    def move(self, angle: float) -> None:
        """Drive to `angle`; ValueError outside the travel, BusFault if the board is gone."""
        self.board.set_pulse(self.channel, self.travel.pulse_us(angle))
        self.angle = angle

    def safe(self) -> None:
        self.move(self.safe_angle)
