"""Serial distance sensors (TFmini, A02YYUW, anything printing lines).

One reader thread per port, as in pyserial's `serial.threaded`: it owns the
port, hands every chunk to a pure frame parser, and pushes samples.  When the
port vanishes (USB adapter pulled, pty closed) it reports the fault, then
reopens with capped exponential back-off so a missing device costs no CPU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import serial

from drivers.base import DriverError, Option, Sample, SensorDriver, one_of, positive
from drivers.protocols import BAUDRATES, LINE_GROUPS, make_parser

log = logging.getLogger("anse_hw.drivers")


def _valid_pattern(pattern: str) -> str | None:
    try:
        groups = re.compile(pattern).groupindex
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    if not any(group in groups for group in LINE_GROUPS):
        return "needs a named group (?P<value>...), or (?P<cm>...) / (?P<mm>...) for distances"
    return None


class SerialDistanceSensor(SensorDriver):
    DEFAULT_INTERVAL = 0.01
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("port", str, help="device path, e.g. /dev/serial0 or /dev/ttyUSB0"),
        Option(
            "protocol",
            str,
            help="tfmini | a02yyuw | line",
            check=one_of("tfmini", "a02yyuw", "line"),
        ),
        Option("baudrate", int, None, "default: the protocol's (115200, a02yyuw 9600)", positive),
        Option(
            "pattern",
            str,
            None,
            "protocol: line — regex with a named group cm or mm",
            _valid_pattern,
        ),
        Option("min", (int, float), None, "protocol: line — smallest plausible value"),
        Option("max", (int, float), None, "protocol: line — largest plausible value"),
        Option(
            "reconnect_max", (int, float), 2.0, "longest wait between reopen attempts, s", positive
        ),
    )

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        found = [
            (key, "is only used with protocol: line")
            for key in ("pattern", "min", "max")
            if options[key] is not None and options["protocol"] != "line"
        ]
        low, high = options["min"], options["max"]
        if low is not None and high is not None and low >= high:
            found.append(("max", f"must be greater than min ({low:g})"))
        return found

    #: First reopen delay; doubles up to `reconnect_max`.
    RECONNECT_MIN = 0.05
    #: How long one read may block, so close() is noticed promptly.
    READ_TIMEOUT = 0.1

    def __init__(self, name: str, interval: float, max_age: float = 0.5, **options: Any) -> None:
        super().__init__(name, interval, max_age)
        self.port = options["port"]
        self.protocol = options["protocol"]
        self.baudrate = options["baudrate"] or BAUDRATES[self.protocol]
        self.pattern = options.get("pattern")
        # Outside this range a line is not a reading; the kind's range applies too.
        low, high = options.get("min"), options.get("max")
        self.range = (-math.inf if low is None else low, math.inf if high is None else high)
        self.reconnect_max = float(options["reconnect_max"])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: serial.Serial | None = None
        self.reopen_attempts = 0
        # Open once now so a wrong path or a port in use is a startup error.
        self._serial = self._open()

    def describe(self) -> str:
        return f"serial {self.protocol} on {self.port} at {self.baudrate} baud"

    def _open(self) -> serial.Serial:
        if not os.path.exists(self.port):
            raise DriverError(f"serial port {self.port} does not exist")
        try:
            # An idle read returns well within max_age, so a longer gap is a stall.
            timeout = min(self.READ_TIMEOUT, self.max_age / 4)
            port = serial.Serial(self.port, self.baudrate, timeout=timeout, exclusive=True)
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"cannot open serial port {self.port}: {exc}") from exc
        port.reset_input_buffer()
        return port

    def start(self, on_sample, on_fault, on_crash) -> None:
        self._thread = threading.Thread(
            target=self._run,
            args=(on_sample, on_fault, on_crash),
            name=f"serial-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, on_sample, on_fault, on_crash) -> None:
        try:
            while not self._stop.is_set():
                if self._serial is None:
                    self._serial = self._reopen(on_fault)
                    if self._serial is None:
                        return
                problem = self._read_until_lost(self._serial, on_sample)
                self._close_port()
                if problem and not self._stop.is_set():
                    on_fault(f"serial port {self.port} lost ({problem})", True)
        except Exception as exc:
            on_crash(exc)

    def _read_until_lost(self, port: serial.Serial, on_sample: Callable[[Sample], None]) -> str:
        parser = make_parser(self.protocol, self.pattern, *self.range)
        last = time.monotonic()
        while not self._stop.is_set():
            try:
                data = port.read(port.in_waiting or 1)
                now = time.monotonic()
                if data and now - last > self.max_age:
                    on_sample(self._discard_backlog(port, len(data), now - last))
                    parser = make_parser(self.protocol, self.pattern, *self.range)
                    data = b""
            except (serial.SerialException, OSError, TypeError) as exc:
                # pyserial raises TypeError when the fd was closed under it.
                return str(exc) or type(exc).__name__
            last = now
            for sample in parser.feed(data):
                # Stamped when the bytes were read, so time spent waiting for
                # the engine counts against the reading's age.
                on_sample(Sample(sample.value, sample.problem, now))
        return ""

    @staticmethod
    def _discard_backlog(port: serial.Serial, already_read: int, gap: float) -> Sample:
        """This thread did not run for longer than max_age (the process was
        frozen, the machine stalled): what waits in the kernel buffer is old
        news, and old news must not move anything."""
        waiting = port.in_waiting
        port.reset_input_buffer()
        log.warning(
            "serial %s: discarded %d bytes buffered during a %.1f s stall",
            port.port,
            already_read + waiting,
            gap,
        )
        return Sample.none(
            f"discarded {already_read + waiting} bytes buffered during a {gap:.1f} s stall"
        )

    def _reopen(self, on_fault) -> serial.Serial | None:
        delay = self.RECONNECT_MIN
        while not self._stop.wait(delay):
            self.reopen_attempts += 1
            try:
                port = self._open()
            except DriverError:
                delay = min(delay * 2, self.reconnect_max)
                continue
            on_fault(f"serial port {self.port} reopened", False)
            return port
        return None

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._close_port()
