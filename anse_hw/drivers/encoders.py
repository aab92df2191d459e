"""Wheel encoders: quadrature on two GPIO pins per wheel, or counts from a
serial line.

Either way the drive reads `counts()`, a (left, right) pair of signed
running counts, on its control thread, and the wheel maths (anse_hw.wheels)
turns them into speeds.

- GPIO: gpiozero's RotaryEncoder on each wheel's A and B pins, with
  `max_steps=0`, which gpiozero documents and implements as unbounded (its
  `steps` neither clamps nor wraps).  It counts one step per full quadrature
  cycle (four edges), so `counts_per_rev` is the encoder's cycles (pulses)
  per revolution as the datasheet gives them, not four times that.  Each
  edge is a Python callback: above a few hundred counts per second edges
  are missed (gpiozero issues #1086 and #1062), so a fast wheel wants:
- serial: a microcontroller counts in interrupts and prints `E,<left>,<right>`
  lines (README, "Wheel encoders"); one reader thread per port, as for the
  serial sensors.  A line that is not that is garbage, counted and skipped;
  a lost port is a fault (the base goes to its safe state) and the port is
  reopened with capped back-off.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from anse_hw.drivers.protocols import LineSplitter
from anse_hw.drivers.serial_sensor import close_quietly, open_serial, reopen
from anse_hw.drivers.threaded import Worker
from anse_hw.errors import DriverError
from anse_hw.plant import WheelPlant
from anse_hw.readings import DriveDriver

if TYPE_CHECKING:
    import serial

__all__ = ["EncoderLines", "Encoders", "GpioEncoders", "PlantEncoders", "SerialEncoders"]

log = logging.getLogger("anse_hw.drivers")

#: `E,<left>,<right>`: two signed decimal counts, nothing else on the line.
ENCODER_LINE = re.compile(rb"E,(-?\d{1,18}),(-?\d{1,18})")

#: The longest wait between reopen attempts of a lost encoder port, s.
RECONNECT_MAX = 2.0

#: Called with (text, active): a fault appears (True) or clears (False).
FaultCallback = Callable[[str, bool], None]


class EncoderLines:
    """Bytes in, (left, right) counts out; whatever is not an encoder line
    is counted in `garbage` and skipped (a reset Arduino's boot chatter, a
    line cut in half by a reconnect)."""

    def __init__(self) -> None:
        self.garbage = 0
        self._lines = LineSplitter()

    def feed(self, data: bytes) -> Iterator[tuple[int, int]]:
        for line in self._lines.feed(data):
            match = ENCODER_LINE.fullmatch(line)
            if match is None:
                self.garbage += 1
                continue
            yield int(match[1]), int(match[2])

    def restart(self) -> None:
        """Forget a partial line: after a reopen its start is gone."""
        self._lines = LineSplitter()


class Encoders:
    """A base's two encoders, as the drive's control thread sees them."""

    def start(self, on_fault: FaultCallback) -> None:
        """Begin counting; `on_fault` hears of a lost and a regained source."""

    def counts(self) -> tuple[int, int]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop counting and give back the pins or the port."""

    def describe(self) -> str:
        return type(self).__name__


class PlantEncoders(Encoders):
    """The sim's encoders: a simulated wheel (anse_hw.plant) under each of
    the drive's duties, stepped by the time since the last read."""

    def __init__(
        self,
        drive: DriveDriver,
        counts_per_rev: tuple[int, int],
        max_rps: float,
        jam_after: float | None = None,
    ) -> None:
        self.drive = drive
        self.plants = tuple(WheelPlant(max_rps, counts_per_rev=c) for c in counts_per_rev)
        #: The sim drive's `jam_after`: seconds of driving before the left wheel jams.
        self.jam_after = jam_after
        self.driven = 0.0
        self._last: float | None = None

    def counts(self) -> tuple[int, int]:
        now = time.monotonic()
        if self._last is not None:
            elapsed = now - self._last
            if self.drive.wheels[0]:
                self.driven += elapsed
            left = self.plants[0]
            left.jammed = self.jam_after is not None and self.driven >= self.jam_after
            for plant, duty in zip(self.plants, self.drive.wheels, strict=True):
                plant.duty = duty
                plant.step(elapsed)
        self._last = now
        left, right = self.plants
        return left.counts, right.counts

    def describe(self) -> str:
        return "simulated wheels with inertia and counting encoders"


class GpioEncoders(Encoders):
    """Two quadrature encoders, each on an A and a B pin."""

    def __init__(
        self, left: dict[str, int], right: dict[str, int], *, pin_factory: Any = None
    ) -> None:
        from gpiozero import RotaryEncoder
        from gpiozero.exc import GPIOZeroError

        self.pins = (left, right)
        self._encoders: list[Any] = []
        try:
            for wheel in self.pins:
                self._encoders.append(
                    RotaryEncoder(wheel["a"], wheel["b"], max_steps=0, pin_factory=pin_factory)
                )
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self.close()
            raise DriverError(f"cannot read the encoder pins: {exc}") from exc

    def counts(self) -> tuple[int, int]:
        left, right = self._encoders
        return left.steps, right.steps

    def close(self) -> None:
        for encoder in self._encoders:
            encoder.close()
        self._encoders = []

    def describe(self) -> str:
        left, right = self.pins
        return (
            f"quadrature encoders on GPIO{left['a']}/GPIO{left['b']} and "
            f"GPIO{right['a']}/GPIO{right['b']}"
        )


class SerialEncoders(Encoders):
    """Counts a microcontroller prints as `E,<left>,<right>` lines."""

    #: How long one read may block, so close() is noticed promptly.
    READ_TIMEOUT = 0.1

    def __init__(self, path: str, baudrate: int) -> None:
        self.path = path
        self.baudrate = baudrate
        self.parser = EncoderLines()
        self._counts = (0, 0)
        self._lock = threading.Lock()
        self._worker = Worker()
        self._on_fault: FaultCallback = lambda text, active: None
        # Opened now, so a wrong path or a port in use is a startup error.
        self._serial: serial.Serial | None = self._open()

    def start(self, on_fault: FaultCallback) -> None:
        self._on_fault = on_fault
        self._worker.start(f"encoders-{os.path.basename(self.path)}", self._run)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self._counts

    def close(self) -> None:
        self._worker.stop()
        self._close_port()

    def describe(self) -> str:
        return f"serial encoders on {self.path} at {self.baudrate} baud"

    def _open(self) -> serial.Serial:
        return open_serial(self.path, self.baudrate, self.READ_TIMEOUT, "encoder port")

    def _run(self) -> None:
        while not self._worker.stopping.is_set():
            if self._serial is None:
                self._serial = self._reopen()
                if self._serial is None:
                    return
            problem = self._read_until_lost(self._serial)
            self._close_port()
            if problem and not self._worker.stopping.is_set():
                log.error("encoder port %s lost (%s)", self.path, problem)
                self._on_fault(f"encoder port {self.path} lost ({problem})", True)

    def _read_until_lost(self, port: serial.Serial) -> str:
        import serial

        self.parser.restart()
        while not self._worker.stopping.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as exc:
                # pyserial raises TypeError when the fd was closed under it.
                return str(exc) or type(exc).__name__
            for counts in self.parser.feed(data):
                with self._lock:
                    self._counts = counts
        return ""

    def _reopen(self) -> serial.Serial | None:
        port = reopen(self._open, self._worker.stopping, RECONNECT_MAX)
        if port is not None:
            self._on_fault(f"encoder port {self.path} reopened", False)
        return port

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        close_quietly(port)
