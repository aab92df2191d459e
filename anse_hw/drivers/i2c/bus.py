"""What a driver needs of an I2C bus, and how a bus error reaches it.

The drivers call the same methods as `smbus2.SMBus` (`open_bus(1)` is
`/dev/i2c-1`), so the register-level fake in `fakebus` can stand in for
it without the drivers being able to tell.  Whatever the adapter reports
when a device does not answer (EREMOTEIO on the Pi's i2c-bcm2835, ENXIO or
EIO on others, ETIMEDOUT on a held-down bus) arrives as one `BusFault`:
for the sensor side a bus error is a fault to retry with `backoff_delay`,
never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = [
    "BusFault",
    "I2CBus",
    "backoff_delay",
    "open_bus",
    "probe",
    "read_reg16",
    "talking_to",
    "write_reg16",
]

#: The lowest and highest 7-bit addresses a device may have (the others are
#: reserved by the I2C specification, and i2cdetect skips them too).
FIRST_ADDRESS = 0x03
LAST_ADDRESS = 0x77


class I2CBus(Protocol):
    """The subset of `smbus2.SMBus` the drivers use, with its signatures.

    Register values are bytes the chip sends in its own order: a driver that
    needs a 16-bit big-endian register reads two bytes with
    `read_i2c_block_data`, never `read_word_data` (SMBus words are
    little-endian, most sensors are not).
    """

    def write_quick(self, i2c_addr: int, force: bool | None = None) -> None: ...

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int: ...

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None: ...

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]: ...

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Sequence[int], force: bool | None = None
    ) -> None: ...

    def i2c_rdwr(self, *i2c_msgs: Any) -> None: ...

    def close(self) -> None: ...


class BusFault(Exception):
    """A device did not answer, or the bus failed, during a transfer.

    `str()` is one line naming the address ("no answer from 0x41 (Remote
    I/O error)"); `errno` is the adapter's, for a caller that cares.
    """

    def __init__(self, address: int, reason: str, code: int | None = None) -> None:
        super().__init__(f"no answer from 0x{address:02x} ({reason})")
        self.address = address
        self.errno = code


@contextmanager
def talking_to(address: int) -> Iterator[None]:
    """Turn the OSError an adapter raises during a transfer into `BusFault`.

    Every OSError counts, not only the NACK codes: a transfer that failed
    for any reason left no reading, and the remedy (retry later) is the same.
    """
    try:
        yield
    except OSError as exc:
        code = exc.errno
        reason = os.strerror(code) if code else str(exc) or type(exc).__name__
        raise BusFault(address, reason, code) from exc


def open_bus(number: int) -> I2CBus:
    """`/dev/i2c-<number>` through smbus2.

    smbus2 is imported here so that a robot without I2C never loads it.
    Opening raises OSError with the kernel's reason, which the caller shows
    (no such file: the I2C interface is not enabled; permission denied: the
    user is not in group i2c).
    """
    from smbus2 import SMBus

    return SMBus(number)


def backoff_delay(failures: int, first: float = 0.05, cap: float = 2.0) -> float:
    """How long to wait before retrying a device after `failures` failed
    reads in a row: nothing before the first failure, then `first`, doubling
    each time up to `cap`.

    Doubling keeps a vanished device from filling the bus with NACKed
    transfers (every one of them holds the bus for a whole address phase)
    while a device that merely glitched is back within a read or two; the
    cap bounds how long a device that came back goes unnoticed.
    """
    if failures < 0 or first <= 0 or cap < first:
        raise ValueError("failures must be >= 0 and 0 < first <= cap")
    if failures == 0:
        return 0.0
    # Past 64 doublings any `first` has long reached any sensible cap;
    # stopping there keeps 2**n from growing without bound.
    return min(cap, first * 2 ** min(failures - 1, 64))


def read_reg16(bus: I2CBus, address: int, register: int, length: int) -> bytes:
    """`length` bytes from a chip with 16-bit register addresses (VL53L1X).

    SMBus commands carry an 8-bit register, so this is one combined I2C
    transaction: write the two address bytes, repeated start, read.
    """
    from smbus2 import i2c_msg

    write = i2c_msg.write(address, [register >> 8, register & 0xFF])
    read = i2c_msg.read(address, length)
    with talking_to(address):
        bus.i2c_rdwr(write, read)
    return bytes(read)


def write_reg16(bus: I2CBus, address: int, register: int, data: Sequence[int]) -> None:
    """Write `data` from a 16-bit register address on, in one transfer."""
    from smbus2 import i2c_msg

    message = i2c_msg.write(address, [register >> 8, register & 0xFF, *data])
    with talking_to(address):
        bus.i2c_rdwr(message)


#: Where i2cdetect reads a byte instead of sending a quick write: a quick
#: write can corrupt some EEPROMs (0x50-0x5f) and lock up some chips at 0x30-0x37.
_READ_TO_PROBE = frozenset(range(0x30, 0x38)) | frozenset(range(0x50, 0x60))


def probe(
    bus: I2CBus, addresses: Sequence[int] = range(FIRST_ADDRESS, LAST_ADDRESS + 1)
) -> list[int]:
    """The addresses among `addresses` where some device ACKs, as i2cdetect
    finds them: for `--check` to say "nothing at 0x41" before any driver
    tries to read a chip ID there."""
    found = []
    for address in addresses:
        try:
            if address in _READ_TO_PROBE:
                bus.read_byte(address)
            else:
                bus.write_quick(address)
        except OSError:
            continue
        found.append(address)
    return found
