"""Recording (SPEC §15): MCAP files that Foxglove opens and replay reads back.

What goes in a file: every raw reading per sensor as it arrived (its value,
or the reason there was none, and faults of the device) on `/readings/<name>`,
every wire event on `/events`, both JSON with JSON schemas, and the config
the daemon ran with in a metadata record `anse-hw`, its secrets redacted.

The engine hands readings over with `Recorder.reading` (a short locked append: the
reflex path waits on nothing), the daemon hands events over with `offer`; a
writer thread of its own writes them.  Messages go straight to the file (no
chunks) and the file is flushed and synced every second, so a SIGKILL or a
power cut loses about a second, and the reader treats a file cut short as
ending where it was cut.  Files rotate at `max_mb`, the newest `keep` are
kept.  When the disk is full or read-only the recorder says so once and
stops; the robot goes on.

Reading a file back is a stream: `scan` (a summary), `readings` and
`decisions` each make one pass over the records through the mcap library's
StreamReader (plain or chunked files alike) and hold one record at a time,
so memory does not grow with the file.  A file is untrusted input: anything
the reader cannot use is a `RecordingProblem`, one line naming the file and
the offset of the bad record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from mcap.records import Channel, Footer, Message, Metadata
from mcap.stream_reader import CRCValidationError, StreamReader
from mcap.writer import Writer

from anse_hw import __version__, events, files
from anse_hw.config import yamlfile
from anse_hw.errors import DriverError
from anse_hw.eventqueue import EventQueue
from anse_hw.readings import Sample

log = logging.getLogger(__name__)

READING_SCHEMA = {
    "title": "anse-hw reading",
    "type": "object",
    "properties": {
        "sensor": {"type": "string"},
        "value": {"type": ["number", "null"]},
        "problem": {"type": ["string", "null"]},
        "fault": {"type": ["string", "null"]},
        "active": {"type": ["boolean", "null"]},
        "arrived": {"type": "number", "description": "monotonic seconds since the start"},
    },
    "required": ["sensor", "value", "arrived"],
}
EVENT_SCHEMA = {
    "title": "anse-hw wire event",
    "type": "object",
    "properties": {
        "type": {"enum": [events.SENSOR, events.WORLDMODEL, events.REFLEX, events.ACTUATOR]},
        "timestamp": {"type": "string"},
        "seq": {"type": "integer"},
        "data": {"type": "object"},
    },
    "required": ["type", "timestamp", "data"],
}
SYNC_EVERY = 1.0  # seconds: the most a crash loses
QUEUE = 20_000
EVENTS_TOPIC = "/events"
READINGS_TOPIC = "/readings/"
CONFIG_METADATA, END_METADATA = "anse-hw", "anse-hw-end"
ENDINGS = ("shutdown", "rotated")
#: Keys whose value is a secret, wherever they are in the config: any key
#: ending in password, token or secret (`password`, `control_token`).  A key
#: naming a file (`password_file`) holds a path, which replay may still need.
SECRET_KEY = re.compile(r"(?:password|token|secret)$", re.IGNORECASE)
REDACTED = "<redacted>"
#: The names the recorder gives its files: the second it started, and a
#: counter for a second file in the same second.  Only these are pruned.
FILE_NAME = re.compile(r"anse-(\d{8}-\d{6})(?:-(\d{1,9}))?\.mcap")


class Recorder:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        config_yaml: str,
        max_mb: float,
        keep: int,
        resolved: str = "",
    ) -> None:
        self.named = os.fspath(directory)  # as given: Path("") would be "."
        self.dir = Path(directory)
        self.config_yaml = redacted(config_yaml)
        self.resolved = resolved
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.keep = keep
        self.started = time.monotonic()
        self._queue: EventQueue[tuple[str, Any, float]] = EventQueue(QUEUE)
        #: The engine's thread and the event loop put, the writer thread gets.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0
        self.failed: str | None = None
        self._last = ("", 0)  # the stem and counter of the newest file
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)

    def claim(self, setting: str) -> None:
        """Make sure recordings can be written before the robot starts: the
        directory exists (or is created) and a file can be created in it.  A
        user who asked for a recording gets one or a refusal, never a robot
        that runs on silently unrecorded.  `setting` names where the directory
        came from (`--record`, `recording.dir`) for the one-line DriverError."""
        problem = files.path_problem(self.named)
        if problem is not None:
            raise DriverError(f"{setting} {problem}")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.dir):
                pass  # an unnamed file (O_TMPFILE): proves writing, leaves nothing
        except FileExistsError:
            problem = "is a file, not a directory"
        except OSError as exc:
            problem = f"cannot hold recordings ({exc.strerror or exc})"
        if problem is not None:
            raise DriverError(f"{setting}: {files.FileProblem(self.named, problem)}")

    def start(self) -> None:
        self._thread.start()

    # -- fed by the engine and the daemon: appends only -------------------------

    def reading(self, name: str, sample: Sample, arrived: float) -> None:
        self._put(
            ("reading", {"sensor": name, "value": sample.value, "problem": sample.problem}, arrived)
        )

    def fault(self, name: str, text: str, active: bool) -> None:
        self._put(
            (
                "reading",
                {"sensor": name, "value": None, "fault": text, "active": active},
                time.monotonic(),
            )
        )

    def offer(self, batch: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for event in batch:
            self._put(("event", event, now))

    def _put(self, item: tuple[str, Any, float]) -> None:
        """The disk is slower than the robot when the queue is full: the oldest
        telemetry (a sensor or worldmodel event) goes first, and readings,
        reflex and actuator events are kept while any telemetry is left."""
        if self.failed is not None:
            return
        kind, content, _ = item
        with self._lock:
            dropped = self._queue.put(item, kind == "event" and events.is_telemetry(content))
        if dropped:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.warning("recording: %d telemetry events dropped (disk too slow)", self.dropped)

    def _take(self) -> tuple[str, Any, float] | None:
        """The oldest queued item, or None."""
        with self._lock:
            return self._queue.get() if self._queue else None

    # -- the writer thread --------------------------------------------------------

    def _run(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            while not self._stop.is_set():
                self._write_one_file()
        except OSError as exc:
            self.failed = f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or self.dir})"
            with self._lock:
                self._queue.clear()
            log.error("recording stopped: %s; the robot runs on without it", self.failed)

    def _write_one_file(self) -> None:
        path, handle = self._create()
        with handle:
            # The data section's CRC lets a reader tell a damaged file (a bit
            # flipped on a worn SD card) from a good one.
            writer = Writer(handle, use_chunking=False, enable_data_crcs=True)
            writer.start(profile="", library=f"anse-hw {__version__}")
            writer.add_metadata(
                CONFIG_METADATA,
                {
                    "config_yaml": self.config_yaml,
                    "config_resolved": self.resolved,
                    "version": __version__,
                },
            )
            channels = _Channels(writer)
            log.info("recording to %s", path)
            self._prune(path)
            last_sync = time.monotonic()
            while not self._stop.is_set() or self._queue:
                self._stop.wait(0.05)
                while (queued := self._take()) is not None:
                    kind, item, when = queued
                    channels.write(kind, item, when - self.started)
                if time.monotonic() - last_sync >= SYNC_EVERY or self._stop.is_set():
                    handle.flush()
                    os.fsync(handle.fileno())
                    last_sync = time.monotonic()
                if handle.tell() >= self.max_bytes:
                    break
            # How this file ends, for replay: the daemon stopping drives every
            # actuator to its safe state, which no reading explains.
            ended = "shutdown" if self._stop.is_set() else "rotated"
            writer.add_metadata(END_METADATA, {"ended": ended})
            writer.finish()

    def _create(self) -> tuple[Path, BinaryIO]:
        """A new file named for the second it starts in; more files in the same
        second (a small max_mb) get -1, -2, ..., counting on from the last one
        even when pruning has freed a name, so the names keep the order the
        files were started in.  Created exclusively: an existing file is never
        written over."""
        stem = time.strftime("anse-%Y%m%d-%H%M%S")
        number = self._last[1] + 1 if self._last[0] == stem else 0
        while True:
            path = self.dir / (f"{stem}-{number}.mcap" if number else f"{stem}.mcap")
            try:
                handle = open(path, "xb")  # noqa: SIM115 - the caller's `with` closes it
            except FileExistsError:
                number += 1
                continue
            self._last = (stem, number)
            return path, handle

    def _prune(self, current: Path) -> None:
        """Keep the newest `keep` files, counting the one being written, which
        is never deleted whatever the clock or the names say."""
        older = sorted(
            (p for p in self.dir.glob("anse-*.mcap") if FILE_NAME.fullmatch(p.name)),
            key=_start_order,
        )
        older = [p for p in older if p != current]
        for old in older[: max(0, len(older) + 1 - self.keep)]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _start_order(path: Path) -> tuple[str, int]:
    """Oldest first: the second a file was started in, then its counter
    (-10 comes after -9, which sorting the names would not give)."""
    match = FILE_NAME.fullmatch(path.name)
    assert match is not None  # only names that matched are sorted
    return match[1], int(match[2] or 0)


def redacted(config_yaml: str) -> str:
    """The config as the recording stores it: the same data with the value of
    every secret key (SECRET_KEY) replaced by REDACTED, dumped again as YAML.
    Comments are not kept (one may hold a secret too); anchors are, so the
    stored text stays as small as the original.  A text that does not parse
    (never one the daemon started from) is not stored at all: what in it is
    secret cannot be told."""
    try:
        data, _ = yamlfile.load(config_yaml)
    except yamlfile.YamlProblem:
        return ""
    return yaml.safe_dump(_without_secrets(data, {}), sort_keys=False, allow_unicode=True)


def _without_secrets(data: Any, done: dict[int, Any]) -> Any:
    """A copy of `data` with secret values replaced; `done` maps each mapping
    or list already copied to its copy, so a YAML alias stays one object."""
    if not isinstance(data, dict | list):
        return data
    if id(data) in done:
        return done[id(data)]
    if isinstance(data, list):
        items: list[Any] = []
        done[id(data)] = items
        items.extend(_without_secrets(item, done) for item in data)
        return items
    mapping: dict[Any, Any] = {}
    done[id(data)] = mapping
    for key, value in data.items():
        secret = isinstance(key, str) and SECRET_KEY.search(key)
        mapping[key] = REDACTED if secret and value is not None else _without_secrets(value, done)
    return mapping


class _Channels:
    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.reading_schema = writer.register_schema(
            "anse-hw.reading", "jsonschema", json.dumps(READING_SCHEMA).encode()
        )
        event_schema = writer.register_schema(
            "anse-hw.event", "jsonschema", json.dumps(EVENT_SCHEMA).encode()
        )
        self.events = writer.register_channel(EVENTS_TOPIC, "json", event_schema)
        self.readings: dict[str, int] = {}

    def write(self, kind: str, item: dict[str, Any], seconds: float) -> None:
        if kind == "reading":
            name = item["sensor"]
            channel = self.readings.get(name)
            if channel is None:
                channel = self.readings[name] = self.writer.register_channel(
                    f"{READINGS_TOPIC}{name}", "json", self.reading_schema
                )
            item = {**item, "arrived": round(seconds, 6)}
        else:
            channel = self.events
        stamp = int(seconds * 1e9)
        self.writer.add_message(channel, stamp, json.dumps(item).encode(), stamp)


# -- reading files back ----------------------------------------------------------

MAGIC = b"\x89MCAP0\r\n"
#: The largest record the reader takes: far above anything anse-hw writes (a
#: reading is ~150 bytes, the config at most 32 KiB), small enough that a
#: length field with a flipped bit cannot make it allocate gigabytes.
MAX_RECORD = 64 * 1024 * 1024
#: No daemon runs this long (317 years): a larger time is damage.
MAX_SECONDS = 1e10
#: ("reflex", name, condition, triggered) or ("actuator", name, state).
Decision = tuple[Any, ...]


class RecordingProblem(files.FileProblem):
    """A file the reader cannot use; `str()` is one line naming the file and,
    for a bad record, its offset (`offset`, in bytes from the start)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, offset: int | None = None):
        where = f"is damaged at offset {offset}: " if offset is not None else ""
        super().__init__(path, where + reason)
        self.offset = offset


class _Bad(Exception):
    """A record's content is unusable; the reader adds the file and offset."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One row of `/readings/<sensor>`: a value (or None and the problem), or
    a device fault (`fault` set, `active` whether it began or ended)."""

    sensor: str
    value: float | None
    arrived: float  # seconds since the recording started
    problem: str | None = None
    fault: str | None = None
    active: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    """One `/events` message: its type, when it was written, and the decision
    it carries (reflex and actuator events) or None."""

    type: str
    at: float
    decision: Decision | None


@dataclass
class Summary:
    """What one pass over a file found; the listing and replay's checks."""

    path: Path
    config_yaml: str | None = None  # None: no anse-hw metadata (yet)
    ended: str = ""  # "shutdown" | "rotated" | "" (cut short)
    cut_at: int | None = None  # the offset where a file cut short ends
    readings: int = 0
    sensors: set[str] = field(default_factory=set)
    first: float | None = None  # `arrived` of the first reading in the file
    latest: float = 0.0  # the latest `arrived`
    until: float = 0.0  # the latest time of anything in the file
    events: Counter[str] = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        return self.cut_at is None

    @property
    def span(self) -> float:
        return self.latest - self.first if self.first is not None else 0.0


def decision(event: dict[str, Any]) -> Decision | None:
    """What --verify compares, from one wire event: reflex and actuator events."""
    d = event["data"]
    if event["type"] == events.REFLEX:
        return ("reflex", d["reflex_name"], d["condition"], d["triggered"])
    if event["type"] == events.ACTUATOR:
        return ("actuator", d["actuator_name"], d["state"])
    return None


def scan(path: str | os.PathLike[str]) -> Summary:
    """One pass over the whole file: counts, sensors, times, config and how it
    ended.  Every record is checked, so a file that scans replays."""
    contents = _Contents(path)
    summary = Summary(Path(path))
    for item in contents:
        if isinstance(item, Reading):
            summary.readings += 1
            summary.sensors.add(item.sensor)
            if summary.first is None:
                summary.first = item.arrived
            summary.latest = max(summary.latest, item.arrived)
            summary.until = max(summary.until, item.arrived)
        else:
            summary.events[item.type] += 1
            summary.until = max(summary.until, item.at)
    summary.config_yaml, summary.ended, summary.cut_at = (
        contents.config_yaml,
        contents.ended,
        contents.cut_at,
    )
    if summary.config_yaml is None and summary.complete:
        raise RecordingProblem(path, "is an MCAP file but not an anse-hw recording (no config)")
    return summary


def readings(path: str | os.PathLike[str]) -> Iterator[Reading]:
    """The readings in file order, one at a time."""
    for item in _Contents(path, with_events=False):
        if isinstance(item, Reading):
            yield item


def decisions(path: str | os.PathLike[str]) -> Iterator[Decision]:
    """The recorded decisions in file order, one at a time."""
    for item in _Contents(path, with_readings=False):
        if isinstance(item, Event) and item.decision is not None:
            yield item.decision


class _Contents:
    """One pass over a file's records, yielding its readings and events.

    The metadata is kept as it goes by (`config_yaml`, `ended`), and how the
    file ends: `cut_at` is where a file cut short stops (a record that runs
    past the end of the file, or no footer), which is a clean end, not an
    error: what was written before it is read.  Everything else that cannot be
    read raises RecordingProblem."""

    def __init__(
        self, path: str | os.PathLike[str], with_readings: bool = True, with_events: bool = True
    ) -> None:
        self.path = path
        # A pass that needs only one kind leaves the other's JSON undecoded
        # (a third of the time): `scan` has checked those already.
        self.with_readings = with_readings
        self.with_events = with_events
        self.config_yaml: str | None = None
        self.ended = ""
        self.cut_at: int | None = None
        self._channels: dict[int, str] = {}

    def __iter__(self) -> Iterator[Reading | Event]:
        with files.open_regular(self.path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if not self._starts_as_mcap(handle, size):
                return
            records = StreamReader(handle, validate_crcs=True, record_size_limit=MAX_RECORD).records
            offset = 0
            footer = False
            while True:
                before = handle.tell()
                try:
                    record = next(records)
                except StopIteration:
                    return
                except Exception as exc:
                    # The mcap library parsing untrusted bytes can fail in any
                    # way (struct, UnicodeDecode, its own errors, a CRC
                    # mismatch): each is this file's damage, or where it was cut.
                    self._stopped(handle, before, size, footer, exc)
                    return
                if handle.tell() != before:  # else: the next record of the same chunk
                    offset = before
                footer = footer or isinstance(record, Footer)
                try:
                    item = self._item(record)
                except _Bad as exc:
                    raise RecordingProblem(self.path, str(exc), offset) from None
                if item is not None:
                    yield item

    def _starts_as_mcap(self, handle: BinaryIO, size: int) -> bool:
        """False for a file cut inside its magic bytes; raises for one that is
        empty or no MCAP at all."""
        if size == 0:
            raise RecordingProblem(self.path, "is empty, not an MCAP recording")
        start = handle.read(len(MAGIC))
        if not MAGIC.startswith(start):
            raise RecordingProblem(self.path, "is not an MCAP recording (it has no MCAP magic)")
        handle.seek(0)
        if len(start) < len(MAGIC):
            self.cut_at = 0
            return False
        return True

    def _stopped(
        self, handle: BinaryIO, offset: int, size: int, footer: bool, exc: Exception
    ) -> None:
        """The record at `offset` could not be read.  In a file cut short (it
        does not end with MCAP's closing magic) where that record runs past the
        end, or there is none, the file ends there, cleanly; after the footer
        only the closing magic is missing.  Anything else is damage."""
        fd = handle.fileno()
        header = os.pread(fd, 9, offset)
        runs_past = len(header) < 9 or offset + 9 + struct.unpack("<Q", header[1:])[0] > size
        closed = size >= 2 * len(MAGIC) and os.pread(fd, len(MAGIC), size - len(MAGIC)) == MAGIC
        if footer or (runs_past and not closed):
            self.cut_at = offset
            return
        if isinstance(exc, CRCValidationError):
            raise RecordingProblem(
                self.path,
                f"is damaged: its data does not match the CRC at offset {offset} "
                "(a bit flipped on disk or in a copy?)",
            ) from None
        reason = f"unreadable record ({type(exc).__name__}: {_text(str(exc))})"
        raise RecordingProblem(self.path, reason, offset) from None

    def _item(self, record: Any) -> Reading | Event | None:
        if isinstance(record, Channel):
            self._channel(record)
        elif isinstance(record, Metadata):
            self._metadata(record)
        elif isinstance(record, Message):
            topic = self._channels.get(record.channel_id)
            if topic is None:
                raise _Bad(f"a message on channel {record.channel_id}, which was never declared")
            if topic == EVENTS_TOPIC and self.with_events:
                return _event(_json(record.data), record.log_time / 1e9)
            if topic.startswith(READINGS_TOPIC) and self.with_readings:
                return _reading(_json(record.data), topic[len(READINGS_TOPIC) :])
        return None  # schemas, indexes, other tools' channels: nothing replay uses

    def _channel(self, channel: Channel) -> None:
        ours = channel.topic == EVENTS_TOPIC or channel.topic.startswith(READINGS_TOPIC)
        if ours and channel.message_encoding != "json":
            encoding = _text(channel.message_encoding)
            raise _Bad(f"channel {_text(channel.topic)} is encoded as {encoding}, not JSON")
        if channel.topic == READINGS_TOPIC:
            raise _Bad(f"channel {READINGS_TOPIC} names no sensor")
        self._channels[channel.id] = channel.topic

    def _metadata(self, record: Metadata) -> None:
        if record.name == CONFIG_METADATA:
            text = record.metadata.get("config_yaml")
            if self.config_yaml is not None:
                raise _Bad("a second anse-hw config")
            if text is None:
                raise _Bad("anse-hw metadata without config_yaml")
            self.config_yaml = text
        elif record.name == END_METADATA:
            ended = record.metadata.get("ended")
            if ended not in ENDINGS:
                raise _Bad(f"the file ends as {_text(ended)}, not {' or '.join(ENDINGS)}")
            self.ended = ended


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Bad(f"a message that is not JSON ({_text(str(exc))})") from None


def _reading(data: Any, sensor: str) -> Reading:
    if not isinstance(data, dict):
        raise _Bad(f"a reading that is {_kind(data)}, not an object")
    if data.get("sensor") != sensor:
        raise _Bad(
            f"a reading of sensor {_text(data.get('sensor'))} on the channel of {_text(sensor)}"
        )
    arrived = _number(data, "arrived", required=True)
    if arrived is None or not 0 <= arrived <= MAX_SECONDS:
        shown = "null" if arrived is None else f"{arrived:g} s"
        raise _Bad(f"a reading arrived at {shown}, not a time in a recording")
    return Reading(
        sensor,
        _number(data, "value", required=True),
        arrived,
        _optional(data, "problem", str),
        _optional(data, "fault", str),
        bool(_optional(data, "active", bool)),
    )


def _number(data: dict[str, Any], key: str, required: bool = False) -> float | None:
    """A JSON number (or null) as a float; NaN and infinity pass, as a driver
    may have measured them (the engine refuses them as it did live)."""
    if required and key not in data:
        raise _Bad(f"a reading without {key!r}")
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"a reading whose {key} is {_kind(value)}, not a number")
    try:
        return float(value)
    except OverflowError:
        raise _Bad(f"a reading whose {key} is too large a number") from None


def _optional(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise _Bad(f"a reading whose {key} is {_kind(value)}, not {kind.__name__}")
    return value


def _event(data: Any, at: float) -> Event:
    if not isinstance(data, dict):
        raise _Bad(f"an event that is {_kind(data)}, not an object")
    kind = data.get("type")
    if kind not in (events.SENSOR, events.WORLDMODEL, events.REFLEX, events.ACTUATOR):
        raise _Bad(f"an event of type {_text(kind)}")
    body = data.get("data")
    if not isinstance(body, dict):
        raise _Bad(f"a {kind} event whose data is {_kind(body)}, not an object")
    needs: dict[str, type] = {
        events.REFLEX: {"reflex_name": str, "condition": str, "triggered": bool},
        events.ACTUATOR: {"actuator_name": str, "state": str},
    }.get(kind, {})
    for key, wanted in needs.items():
        if not isinstance(body.get(key), wanted):
            raise _Bad(f"a {kind} event whose {key} is {_kind(body.get(key))}")
    return Event(kind, at, decision(data))


def _kind(value: Any) -> str:
    """A JSON value's type, for a message: "a list", "a string", "missing"."""
    if value is None:
        return "missing"
    names = {bool: "true/false", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), "a number")


def _text(value: Any) -> str:
    """Something from the file, shown in a message: one line, cut short."""
    shown = repr(value) if not isinstance(value, str) or not value.isprintable() else value
    shown = " ".join(shown.split())
    return shown if len(shown) <= 80 else shown[:80] + "…"
