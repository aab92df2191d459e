"""Reading recordings back, as a stream.

`scan` (a summary), `readings` and `decisions` each make one pass over the
records through the mcap library's StreamReader (plain or chunked files
alike) and hold one record at a time, so memory does not grow with the
file.  `indexed` and `readings_between` seek instead, through a complete
file's summary section and chunk indexes (a window of a long recording reads
its own chunks only).  A file is untrusted input: anything the reader cannot use is a
`RecordingProblem`, one line naming the file and the offset of the bad
record.
"""

from __future__ import annotations

import json
import os
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mcap.reader import SeekingReader
from mcap.records import (
    Channel,
    Chunk,
    ChunkIndex,
    Footer,
    Message,
    MessageIndex,
    Metadata,
    Statistics,
)
from mcap.stream_reader import CRCValidationError, StreamReader, breakup_chunk

from anse_hw import events, files
from anse_hw.channels import EVENTS_TOPIC, READINGS_TOPIC
from anse_hw.recording.format import (
    CLOCK_ORIGIN,
    CONFIG_METADATA,
    END_METADATA,
    ENDINGS,
    MAGIC,
    MAX_RECORD,
    MAX_SECONDS,
    Decision,
)


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
    from_index: bool = False  # `indexed`: the summary section's, the data unread

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
    if event["type"] == events.ACTUATOR and "wheel_speeds" not in d:
        # Measured wheel speeds are the world's, not a decision replay can make.
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


def indexed(path: str | os.PathLike[str]) -> Summary | None:
    """What a complete, indexed file's summary section says, read without its
    data: None for a file without one (cut short, or written unchunked), which
    `scan` reads whole.  The readings' first and latest times come from the
    message indexes of the chunks that hold them; `events` is left empty (it
    would take every event)."""
    with files.open_regular(path) as handle:
        found = _Index.read(path, handle)
        if found is None:
            return None
        return found.summary(path, handle)


def readings_between(
    path: str | os.PathLike[str], since: float, until: float | None
) -> Iterator[Reading]:
    """The readings of an indexed file that arrived from `since` to `until`
    (seconds, as `Reading.arrived`), in file order: only the chunks whose
    time span overlaps are read (and their CRCs checked)."""
    with files.open_regular(path) as handle:
        index = _Index.read(path, handle)
        if index is None:
            raise RecordingProblem(path, "has no index to seek in")
        low = index.origin_ns + int(since * 1e9) - _SLACK_NS
        high = None if until is None else index.origin_ns + int(until * 1e9) + _SLACK_NS
        for chunk in index.chunks:
            if chunk.message_end_time < low or (
                high is not None and chunk.message_start_time > high
            ):
                continue
            for record in index.records(path, handle, chunk):
                if isinstance(record, Message):
                    topic = index.contents._channels.get(record.channel_id, "")
                    if topic.startswith(READINGS_TOPIC):
                        try:
                            reading = _reading(_json(record.data), topic[len(READINGS_TOPIC) :])
                        except _Bad as exc:
                            raise RecordingProblem(
                                path, str(exc), chunk.chunk_start_offset
                            ) from None
                        if reading.arrived >= since and (until is None or reading.arrived <= until):
                            yield reading


#: A reading's log_time is its `arrived` in whole nanoseconds, `arrived`
#: itself rounded to the microsecond: a chunk this close to a window's edge
#: is read, and its readings decide by `arrived`.
_SLACK_NS = 1_000_000


@dataclass
class _Index:
    """An indexed file's summary section, with its metadata and channels
    taken in as `_Contents` takes them while streaming."""

    chunks: list[ChunkIndex]
    statistics: Statistics | None
    contents: _Contents

    @property
    def origin_ns(self) -> int:
        return self.contents.origin_ns

    @classmethod
    def read(cls, path: str | os.PathLike[str], handle: BinaryIO) -> _Index | None:
        contents = _Contents(path)
        size = os.fstat(handle.fileno()).st_size
        if not contents._starts_as_mcap(handle, size):
            return None
        try:
            reader = SeekingReader(handle, validate_crcs=True, record_size_limit=MAX_RECORD)
            summary = reader.get_summary()
            metadata = list(reader.iter_metadata()) if summary is not None else []
        except Exception:
            return None  # cut short or damaged: `scan`, record by record, says where
        if summary is None or not summary.chunk_indexes:
            return None
        try:
            for record in (*summary.channels.values(), *metadata):
                contents._item(record)
        except _Bad as exc:
            raise RecordingProblem(path, str(exc)) from None
        chunks = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)
        return cls(chunks, summary.statistics, contents)

    def records(self, path: str | os.PathLike[str], handle: BinaryIO, chunk: ChunkIndex) -> list:
        """The records of one chunk, its CRC checked."""
        try:
            handle.seek(chunk.chunk_start_offset)
            found = next(
                StreamReader(
                    handle, skip_magic=True, emit_chunks=True, record_size_limit=MAX_RECORD
                ).records
            )
            if not isinstance(found, Chunk):
                raise ValueError(f"a {type(found).__name__} where the index has a chunk")
            return breakup_chunk(found, validate_crc=True)
        except Exception as exc:
            reason = f"unreadable chunk ({type(exc).__name__}: {_text(str(exc))})"
            raise RecordingProblem(path, reason, chunk.chunk_start_offset) from None

    def summary(self, path: str | os.PathLike[str], handle: BinaryIO) -> Summary:
        readings = {i for i, t in self.contents._channels.items() if t.startswith(READINGS_TOPIC)}
        result = Summary(
            Path(path), self.contents.config_yaml, self.contents.ended, from_index=True
        )
        if result.config_yaml is None:
            raise RecordingProblem(path, "is an MCAP file but not an anse-hw recording (no config)")
        counts = self.statistics.channel_message_counts if self.statistics else {}
        result.readings = sum(counts.get(i, 0) for i in readings)
        result.sensors = {self.contents._channels[i][len(READINGS_TOPIC) :] for i in readings}
        holding = [c for c in self.chunks if readings & set(c.message_index_offsets)]
        if holding:
            first = min(self._times(path, handle, holding[0], readings))
            latest = max(self._times(path, handle, holding[-1], readings))
            result.first = (first - self.origin_ns) / 1e9
            result.latest = (latest - self.origin_ns) / 1e9
        end = max((c.message_end_time for c in self.chunks), default=self.origin_ns)
        result.until = (end - self.origin_ns) / 1e9
        return result

    def _times(
        self, path: str | os.PathLike[str], handle: BinaryIO, chunk: ChunkIndex, channels: set[int]
    ) -> list[int]:
        """The log_times of the messages on `channels` in `chunk`, from its
        message indexes (a few bytes each) rather than the chunk."""
        times = []
        for channel in channels & set(chunk.message_index_offsets):
            try:
                handle.seek(chunk.message_index_offsets[channel])
                record = next(
                    StreamReader(handle, skip_magic=True, record_size_limit=MAX_RECORD).records
                )
            except Exception as exc:
                reason = f"unreadable message index ({type(exc).__name__}: {_text(str(exc))})"
                raise RecordingProblem(path, reason, chunk.chunk_start_offset) from None
            if not isinstance(record, MessageIndex) or not record.records:
                raise RecordingProblem(
                    path, "a chunk's message index is not one", chunk.chunk_start_offset
                )
            times += [t for t, _ in record.records]
        return times


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
        self.origin_ns = 0  # format.CLOCK_ORIGIN; 0 in files from before it
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
                return _event(_json(record.data), (record.log_time - self.origin_ns) / 1e9)
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
            self.origin_ns = _origin(record.metadata.get(CLOCK_ORIGIN, "0"))
        elif record.name == END_METADATA:
            ended = record.metadata.get("ended")
            if ended not in ENDINGS:
                raise _Bad(f"the file ends as {_text(ended)}, not {' or '.join(ENDINGS)}")
            self.ended = ended


def _origin(text: str) -> int:
    """The clock mapping's Unix-epoch nanoseconds: a whole number that a
    message's uint64 log_time can be counted from."""
    if not (text.isascii() and text.isdigit() and int(text) < 2**63):
        raise _Bad(f"a {CLOCK_ORIGIN} of {_text(text)}, not nanoseconds since 1970")
    return int(text)


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
