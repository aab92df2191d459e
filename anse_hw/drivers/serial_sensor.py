"""Serial sensors: a TFmini, an A02YYUW, or anything printing lines (an Arduino).

One reader thread per port, as in pyserial's `serial.threaded`: a `SharedPort`
owns the port, hands every chunk to the protocol's framing (the pure parsers
of drivers.protocols) and passes the readings to the sensors on it.  With
`protocol: line` several sensors may name the same port: it is opened once,
and every line goes to each sensor whose pattern matches (an Arduino printing
`D,42.5` and `T,23.4,41` feeds a distance, a temperature and a humidity
sensor).  When the port vanishes (USB adapter pulled, pty closed) every
sensor on it is faulted, and the port is reopened with capped exponential
back-off so a missing device costs no CPU.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from anse_hw import files
from anse_hw.drivers.threaded import Worker
from anse_hw.errors import DriverError
from anse_hw.kinds import SENSOR_KINDS, SensorKind
from anse_hw.options import Option, a_path, in_range, one_of
from anse_hw.readings import Sample, SensorDriver

if TYPE_CHECKING:
    import serial  # imported where a port is opened: a robot without one never loads it
from anse_hw.drivers.protocols import (
    BAUDRATES,
    DEFAULT_LINE_PATTERN,
    LinePattern,
    LineSplitter,
    line_pattern_problem,
    make_parser,
)

log = logging.getLogger("anse_hw.drivers")

#: The first reopen delay, seconds; it doubles up to `reconnect_max`.
RECONNECT_MIN = 0.05


class SerialSensor(SensorDriver):
    DRIVER = "serial"
    KINDS = ("distance", "temperature", "humidity")
    DEFAULT_INTERVAL = 0.01
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("port", str, help="device path, e.g. /dev/serial0 or /dev/ttyUSB0", check=a_path),
        Option(
            "protocol",
            str,
            help="tfmini | a02yyuw | line",
            check=one_of("tfmini", "a02yyuw", "line"),
        ),
        Option(
            "baudrate",
            int,
            None,
            "default: the protocol's (115200, a02yyuw 9600); 50 to 4000000, what UARTs "
            "and USB adapters can do",
            in_range(50, 4_000_000),
        ),
        Option(
            "pattern",
            str,
            None,
            "protocol: line — a regular expression (RE2 syntax: no backreferences or "
            "lookarounds, so it runs in linear time) with a named group value (or cm / mm)",
            line_pattern_problem,
        ),
        Option("min", (int, float), None, "protocol: line — smallest plausible value"),
        Option("max", (int, float), None, "protocol: line — largest plausible value"),
        Option(
            "reconnect_max",
            (int, float),
            2.0,
            "longest wait between reopen attempts, s (0.05 to 60: the first wait is 0.05 s; "
            "longer leaves the robot stopped for minutes after its sensor is back)",
            in_range(RECONNECT_MIN, 60, " seconds"),
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

    @classmethod
    def problems_across(cls, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str, str]]:
        """Only line sensors share a port, and they must agree on how to open it."""
        found = []
        first: dict[str, int] = {}
        for index, (_, options) in enumerate(items):
            owner = first.setdefault(device_of(options["port"]), index)
            if owner == index:
                continue
            owner_name, owner_options = items[owner]
            alias = (
                f" (as {owner_options['port']})" if owner_options["port"] != options["port"] else ""
            )
            if not options["protocol"] == owner_options["protocol"] == "line":
                found.append(
                    (
                        index,
                        "port",
                        f"is already used by sensor '{owner_name}'{alias}; only protocol: line "
                        "sensors can share a port",
                    )
                )
            elif options["baudrate"] != owner_options["baudrate"]:
                found.append((index, "baudrate", f"must match sensor '{owner_name}' on this port"))
        return found

    @classmethod
    def device_problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        problem = port_problem(options["port"])
        return [("port", problem)] if problem else []

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind: SensorKind = SENSOR_KINDS["distance"],
        **options: Any,
    ) -> None:
        super().__init__(name, interval, max_age, kind=kind)
        self.protocol = options["protocol"]
        low, high = options.get("min"), options.get("max")
        self.pattern = (
            LinePattern(
                options.get("pattern") or DEFAULT_LINE_PATTERN,
                -math.inf if low is None else low,
                math.inf if high is None else high,
            )
            if self.protocol == "line"
            else None
        )
        # Open (or join) the port now, so a wrong path or a port in use is a startup error.
        self.port = SharedPort.acquire(
            options["port"],
            options["baudrate"] or BAUDRATES[self.protocol],
            self.protocol,
            float(options["reconnect_max"]),
            max_age,
        )

    def describe(self) -> str:
        p = self.port
        return f"serial {self.protocol} on {p.path} at {p.baudrate} baud"

    def start(self, on_sample, on_fault, on_crash) -> None:
        self.port.subscribe(_Subscriber(self, self.pattern, on_sample, on_fault, on_crash))

    def close(self) -> None:
        self.port.release(self)


def open_serial(path: str, baudrate: int, timeout: float, what: str) -> serial.Serial:
    """`path` opened for this process alone, its stale input dropped; a
    DriverError naming `what` and the reason a user can act on otherwise."""
    import serial

    try:
        port = serial.Serial(path, baudrate, timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        if exc.errno == errno.EACCES:
            reason = f"permission denied; {permission_hint(path)}"
        else:  # pyserial repeats the errno in its text: say it once
            reason = os.strerror(exc.errno) if isinstance(exc.errno, int) else str(exc)
        raise DriverError(f"cannot open {what} {path}: {reason}") from exc
    port.reset_input_buffer()
    return port


def reopen(
    attempt: Callable[[], serial.Serial], stopping: threading.Event, most: float
) -> serial.Serial | None:
    """A port that went away, opened again by `attempt` (which raises
    DriverError while the device is still gone), waiting RECONNECT_MIN and
    doubling up to `most` seconds between tries; None once `stopping` is set.
    A reader thread blocks here, so nothing else waits for the device."""
    delay = RECONNECT_MIN
    while not stopping.wait(delay):
        try:
            return attempt()
        except DriverError:
            delay = min(delay * 2, most)
    return None


def close_quietly(port: serial.Serial | None) -> None:
    """Close a port that may already be gone (unplugged: EIO on close)."""
    import serial

    if port is not None:
        with contextlib.suppress(serial.SerialException, OSError):
            port.close()


def device_of(path: Any) -> Any:
    """The device a port name stands for: /dev/serial0 and /dev/ttyAMA0 (a
    symlink) are one port, which must be opened once."""
    return os.path.realpath(path) if isinstance(path, str) and not a_path(path) else path


def permission_hint(path: str) -> str:
    """What to do about EACCES on a serial port: join the group that owns it
    (dialout on Raspberry Pi OS and Debian)."""
    try:
        group = grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        group = "dialout"
    return f"add yourself to the {group} group (sudo usermod -aG {group} $USER, then log in again)"


def port_problem(path: str) -> str | None:
    """What `--check` can tell about a serial port without opening it
    (opening one toggles DTR, which resets many Arduinos)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"serial port {path} does not exist (is the device plugged in? is the UART enabled?)"
    except OSError as exc:
        return f"serial port {path} cannot be used ({exc.strerror})"
    if not stat.S_ISCHR(mode):
        kind = "a regular file" if stat.S_ISREG(mode) else files.file_kind(mode)
        return f"{path} is {kind}, not a serial port (a character device)"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"cannot open serial port {path}: permission denied; {permission_hint(path)}"
    return None


@dataclass(frozen=True)
class _Subscriber:
    sensor: SerialSensor
    pattern: LinePattern | None  # None: the port's own frames are this sensor's
    on_sample: Callable[[Sample], None]
    on_fault: Callable[[str, bool], None]
    on_crash: Callable[[BaseException], None]


class SharedPort:
    """One open serial port, its reader thread, and the sensors it feeds."""

    #: How long one read may block, so close() is noticed promptly.
    READ_TIMEOUT = 0.1

    _open: ClassVar[dict[str, SharedPort]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def acquire(
        cls, path: str, baudrate: int, protocol: str, reconnect_max: float, max_age: float
    ) -> SharedPort:
        with cls._registry_lock:
            port = cls._open.get(device_of(path))
            if port is None:
                port = cls(path, baudrate, protocol, reconnect_max, max_age)
                cls._open[device_of(path)] = port
            port.max_age = min(port.max_age, max_age)
            port.users += 1
            return port

    def __init__(
        self, path: str, baudrate: int, protocol: str, reconnect_max: float, max_age: float
    ) -> None:
        self.path = path
        self.baudrate = baudrate
        self.protocol = protocol
        self.reconnect_max = reconnect_max
        self.max_age = max_age
        self.users = 0
        self.reopen_attempts = 0
        self._subscribers: tuple[_Subscriber, ...] = ()
        self._worker = Worker()
        self._serial: serial.Serial | None = self._open_port()

    def subscribe(self, subscriber: _Subscriber) -> None:
        self._subscribers = (*self._subscribers, subscriber)
        if not self._worker.started:
            self._worker.start(f"serial-{os.path.basename(self.path)}", self._run)

    def release(self, sensor: SerialSensor) -> None:
        with self._registry_lock:
            self._subscribers = tuple(s for s in self._subscribers if s.sensor is not sensor)
            self.users -= 1
            if self.users > 0:
                return
            for key, port in list(self._open.items()):
                if port is self:
                    del self._open[key]
        self._worker.stop()
        self._close_port()

    def _open_port(self) -> serial.Serial:
        if not os.path.exists(self.path):
            raise DriverError(f"serial port {self.path} does not exist")
        # An idle read returns well within max_age, so a longer gap is a stall.
        timeout = min(self.READ_TIMEOUT, self.max_age / 4)
        return open_serial(self.path, self.baudrate, timeout, "serial port")

    def _fault(self, text: str, active: bool) -> None:
        for subscriber in self._subscribers:
            subscriber.on_fault(text, active)

    def _run(self) -> None:
        try:
            while not self._worker.stopping.is_set():
                if self._serial is None:
                    self._serial = self._reopen()
                    if self._serial is None:
                        return
                problem = self._read_until_lost(self._serial)
                self._close_port()
                if problem and not self._worker.stopping.is_set():
                    self._fault(f"serial port {self.path} lost ({problem})", True)
        except Exception as exc:
            for subscriber in self._subscribers[:1]:
                subscriber.on_crash(exc)

    def _framing(self) -> Any:
        """Fresh framing state: after a reopen or a stall, old partial frames are void."""
        return LineSplitter() if self.protocol == "line" else make_parser(self.protocol)

    def _read_until_lost(self, port: serial.Serial) -> str:
        import serial

        framing = self._framing()
        last = time.monotonic()
        while not self._worker.stopping.is_set():
            try:
                data = port.read(port.in_waiting or 1)
                now = time.monotonic()
                if data and now - last > self.max_age:
                    self._discard_backlog(port, len(data), now - last)
                    framing, data = self._framing(), b""
            except (serial.SerialException, OSError, TypeError) as exc:
                # pyserial raises TypeError when the fd was closed under it.
                return str(exc) or type(exc).__name__
            last = now
            if data:
                self._dispatch(framing, data, now)
        return ""

    def _dispatch(self, framing: Any, data: bytes, now: float) -> None:
        """Readings are stamped with when their bytes were read, so time spent
        waiting for the engine counts against their age."""
        subscribers = self._subscribers
        if self.protocol != "line":
            for sample in framing.feed(data):
                for subscriber in subscribers:
                    subscriber.on_sample(Sample(sample.value, sample.problem, now))
            return
        for line in framing.feed(data):
            for subscriber in subscribers:
                sample = subscriber.pattern.decode(line)
                if sample is not None:
                    subscriber.on_sample(Sample(sample.value, sample.problem, now))

    def _discard_backlog(self, port: serial.Serial, already_read: int, gap: float) -> None:
        """This thread did not run for longer than max_age (the process was
        frozen, the machine stalled): what waits in the kernel buffer is old
        news, and old news must not move anything."""
        waiting = port.in_waiting
        port.reset_input_buffer()
        text = f"discarded {already_read + waiting} bytes buffered during a {gap:.1f} s stall"
        log.warning("serial %s: %s", self.path, text)
        for subscriber in self._subscribers:
            subscriber.on_sample(Sample.none(text))

    def _reopen(self) -> serial.Serial | None:
        def attempt() -> serial.Serial:
            self.reopen_attempts += 1
            return self._open_port()

        port = reopen(attempt, self._worker.stopping, self.reconnect_max)
        if port is not None:
            self._fault(f"serial port {self.path} reopened", False)
        return port

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        close_quietly(port)
