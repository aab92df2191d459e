"""A register-level fake I2C bus with the methods of `smbus2.SMBus`.

The drivers cannot tell it from `/dev/i2c-1`: every SMBus call becomes the
I2C transfers the kernel would send (a write of the register pointer, then
a read), answered by the fake chips in `fakechips`.  An address with no
fake chip NACKs with the errno the Pi's adapter gives (EREMOTEIO).

Which chips sit where, and what they measure, comes from a JSON file (the
config's `i2c.fake_file`), so a test or a person can change them while a
daemon runs, as `gpio.mock_input_file` does for input pins::

    {"0x41": {"device": "ina219", "bus_voltage": 11.1, "current": -0.5,
              "shunt_ohms": 0.1},
     "0x29": {"device": "vl53l1x", "distance_cm": 42},
     "0x76": {"device": "bme280", "temperature": 21.5},
     "0x40": {"device": "pca9685"}}

A device missing from the file NACKs (a loose wire); when it comes back it
keeps the registers it had (it stayed powered).  The file is read through
`anse_hw.files` (regular file, size-capped, UTF-8) and re-read when it
changes; replace it atomically (write a temporary file, rename it over).
A file that cannot be read or parsed at start is an error; later, it leaves
the devices as they were, and `problem` says why.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anse_hw import files, statefile
from anse_hw.drivers.i2c.bus import FIRST_ADDRESS, LAST_ADDRESS
from anse_hw.drivers.i2c.fakechips import FAKES, FakeChip

__all__ = ["FakeBus", "FakeFileError", "parse_fake_file"]

log = logging.getLogger(__name__)

#: Far more than a description of every address a bus has.
MAX_FAKE_FILE = 64 * 1024
#: I2C_M_RD in an i2c_msg's flags: a read message.
I2C_M_RD = 0x0001
#: How often the file is read even when its size and times look unchanged
#: (an in-place rewrite of the same size within one timestamp tick).
REREAD_SECONDS = 0.5

Layout = dict[int, tuple[str, dict[str, float]]]


class FakeFileError(ValueError):
    """The fake file cannot be used; the message is one line naming it."""


def _address(key: str) -> int | None:
    try:
        address = int(key, 0)
    except ValueError:
        return None
    return address if FIRST_ADDRESS <= address <= LAST_ADDRESS else None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice (two devices on one address,
    or one value set twice) is an error, not "the last one wins"."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise FakeFileError(f"{key!r} is given twice")
        seen[key] = value
    return seen


def _device(key: str, entry: Any) -> tuple[str, dict[str, float]]:
    if not isinstance(entry, dict):
        raise FakeFileError(f'{key}: must be an object like {{"device": "ina219"}}')
    values = dict(entry)
    chip = values.pop("device", None)
    if chip not in FAKES:
        raise FakeFileError(f"{key}: device must be one of {', '.join(sorted(FAKES))}")
    for name, value in values.items():
        problem = FAKES[chip].value_problem(name, value)
        if problem:
            raise FakeFileError(f"{key}: {problem}")
    return chip, values


def parse_fake_file(text: str) -> Layout:
    """{address: (chip, values)} from the file's JSON; FakeFileError saying
    what is wrong (without the file name) otherwise."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except FakeFileError:
        raise
    except (ValueError, RecursionError) as exc:
        raise FakeFileError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FakeFileError('the top level must be an object like {"0x41": {"device": "ina219"}}')
    layout: Layout = {}
    for key, entry in data.items():
        address = _address(key)
        if address is None:
            raise FakeFileError(
                f"{key!r} is not an I2C address (0x{FIRST_ADDRESS:02x}..0x{LAST_ADDRESS:02x})"
            )
        if address in layout:
            raise FakeFileError(f"{key!r}: address 0x{address:02x} is given twice")
        layout[address] = _device(key, entry)
    return layout


class FakeBus:
    """A fake `smbus2.SMBus`.  Give `fake_file` (the chips follow it), or
    `chips` ({address: FakeChip}) for a bus that stays as built."""

    def __init__(
        self,
        fake_file: str | None = None,
        chips: dict[int, FakeChip] | None = None,
        state_file: str | None = None,
    ) -> None:
        """`state_file`: where what the chips output (a PCA9685's channels)
        is written after every write to one, for a test in another process."""
        if fake_file is not None and chips:
            raise ValueError("give a fake file or chips, not both: the file says what is present")
        self._lock = threading.RLock()
        self._known: dict[int, FakeChip] = dict(chips or {})
        self._present: set[int] = set(self._known)
        self.path = fake_file
        self.state_file = state_file
        self.problem: str | None = None
        self._signature: tuple[int, ...] | None = None
        self._read_at = 0.0
        if fake_file is not None:
            self._apply(self._load())

    # -- the fake file ------------------------------------------------------

    def _load(self) -> Layout:
        assert self.path is not None
        try:
            layout = parse_fake_file(files.read_text(self.path, MAX_FAKE_FILE))
        except files.FileProblem as exc:
            raise FakeFileError(str(exc)) from None
        except FakeFileError as exc:
            raise FakeFileError(f"{self.path}: {exc}") from None
        self._read_at = time.monotonic()
        return layout

    def _apply(self, layout: Layout) -> None:
        for address, (chip, values) in layout.items():
            current = self._known.get(address)
            if current is None or chip != current.CHIP:
                current = self._known[address] = FAKES[chip]()
            current.update(values)
        self._present = set(layout)

    def _file_signature(self) -> tuple[int, ...] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def refresh(self) -> None:
        """Re-read the fake file if it changed (called before every transfer)."""
        if self.path is None:
            return
        signature = self._file_signature()
        if signature == self._signature and time.monotonic() - self._read_at < REREAD_SECONDS:
            return
        self._signature = signature
        try:
            layout = self._load()
        except FakeFileError as exc:
            if str(exc) != self.problem:
                log.warning("i2c.fake_file: %s; devices stay as they were", exc)
            self.problem = str(exc)
            return
        self.problem = None
        self._apply(layout)

    # -- transfers ----------------------------------------------------------

    def chip(self, address: int) -> FakeChip:
        """The fake chip at `address` (present or not), for a test to look
        at (a PCA9685's pulse widths) or change directly."""
        return self._known[address]

    def _answering(self, address: int) -> FakeChip:
        self.refresh()
        if address not in self._present:
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))
        return self._known[address]

    def _write_read(self, address: int, data: Sequence[int], length: int) -> bytes:
        with self._lock:
            chip = self._answering(address)
            if data:
                chip.write(bytes(data))
                self._save_outputs(chip)
            return chip.read(length) if length else b""

    def _save_outputs(self, chip: FakeChip) -> None:
        """Rewrite the state file (atomically) after a write to a chip with outputs."""
        if self.state_file is None or chip.outputs() is None:
            return
        state = {
            f"0x{address:02x}": {"device": known.CHIP, **outputs}
            for address, known in sorted(self._known.items())
            if (outputs := known.outputs()) is not None
        }
        try:
            statefile.write_bytes(
                Path(self.state_file), json.dumps(state, sort_keys=True).encode(), durable=False
            )
        except OSError as exc:
            log.warning("i2c.fake_state_file: %s", exc)

    def write_quick(self, i2c_addr: int, force: bool | None = None) -> None:
        self._write_read(i2c_addr, (), 0)

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int:
        return self._write_read(i2c_addr, (), 1)[0]

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._write_read(i2c_addr, (register,), 1)[0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._write_read(i2c_addr, (register, value), 0)

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        # SMBus words are little-endian: the first byte is the low one.
        return int.from_bytes(self._write_read(i2c_addr, (register,), 2), "little")

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if not 0 <= length <= 32:
            raise ValueError("SMBus blocks are at most 32 bytes")  # as smbus2 refuses
        return list(self._write_read(i2c_addr, (register,), length))

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Sequence[int], force: bool | None = None
    ) -> None:
        if len(data) > 32:
            raise ValueError("SMBus blocks are at most 32 bytes")
        self._write_read(i2c_addr, (register, *data), 0)

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Combined transfers with smbus2's `i2c_msg`s; read messages are
        filled in place, as the kernel does."""
        with self._lock:
            for message in i2c_msgs:
                chip = self._answering(message.addr)
                if message.flags & I2C_M_RD:
                    for index, value in enumerate(chip.read(message.len)):
                        message.buf[index] = bytes((value,))
                else:
                    chip.write(bytes(message))

    def close(self) -> None:
        """Nothing to release; there for the SMBus interface."""
