"""The recorder: MCAP files that Foxglove opens and replay reads back.

The engine hands readings over with `Recorder.reading` (a short locked
append: the reflex path waits on nothing), the daemon hands events over with
`offer`; a writer thread of its own writes them.  Messages are gathered in
compressed, indexed chunks (MCAP's own chunk, message and summary indexes, so
a viewer seeks instead of scanning) and every second the chunk in progress is
closed, written and synced, so a SIGKILL or a power cut loses about a second,
and the reader treats a file cut short as ending where it was cut.  Message
times are Unix-epoch nanoseconds: the monotonic clock mapped once, at the
start, to the wall clock (the mapping is in the file's metadata), so a
viewer's timeline shows the day it was recorded and a clock step while
recording cannot reorder messages.  Files rotate at `max_mb`, the newest
`keep` are kept.  When the disk is full or read-only the recorder says so
once and stops; the robot goes on.  What goes in a file: format.py.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from mcap.writer import CompressionType, IndexType, Writer

from anse_hw import __version__, events, files
from anse_hw.channels import EVENT_SCHEMA, EVENTS_TOPIC, READING_SCHEMA, READINGS_TOPIC
from anse_hw.errors import DriverError
from anse_hw.eventqueue import EventQueue
from anse_hw.readings import Sample
from anse_hw.recording.format import (
    CLOCK_ORIGIN,
    CONFIG_METADATA,
    END_METADATA,
    FILE_NAME,
    redacted,
)

log = logging.getLogger(__name__)

SYNC_EVERY = 1.0  # seconds: the most a crash loses, and so the longest a chunk spans
#: A chunk also ends at this size (before its compression): far above a
#: second of any robot's data (pi-robot.yaml writes ~60 KB/s), it only
#: bounds the writer's buffer when the queue delivers a backlog at once.
CHUNK_BYTES = 1024 * 1024
QUEUE = 20_000


def compression() -> CompressionType:
    """zstd (our JSON in one-second chunks shrinks about nine times), or lz4
    where the zstandard module is missing (a distribution's mcap without
    it), or none: a recording is never refused for want of a compressor."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        try:
            import lz4.frame  # noqa: F401
        except ImportError:
            return CompressionType.NONE
        return CompressionType.LZ4
    return CompressionType.ZSTD


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
        #: The wall clock at `started`, read once: every message's time is
        #: this plus the monotonic seconds since (format.CLOCK_ORIGIN).
        self.origin_ns = time.time_ns()
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
            # Each chunk's CRC, and the data section's, let a reader tell a
            # damaged file (a bit flipped on a worn SD card) from a good one.
            writer = Writer(
                handle,
                chunk_size=CHUNK_BYTES,
                compression=compression(),
                index_types=IndexType.ALL,
                use_chunking=True,
                use_statistics=True,
                use_summary_offsets=True,
                enable_crcs=True,
                enable_data_crcs=True,
            )
            writer.start(profile="", library=f"anse-hw {__version__}")
            writer.add_metadata(
                CONFIG_METADATA,
                {
                    "config_yaml": self.config_yaml,
                    "config_resolved": self.resolved,
                    "version": __version__,
                    CLOCK_ORIGIN: str(self.origin_ns),
                },
            )
            channels = _Channels(writer, self.origin_ns)
            log.info("recording to %s", path)
            self._prune(path)
            last_sync = time.monotonic()
            while not self._stop.is_set() or self._queue:
                self._stop.wait(0.05)
                while (queued := self._take()) is not None:
                    kind, item, when = queued
                    channels.write(kind, item, when - self.started)
                if time.monotonic() - last_sync >= SYNC_EVERY or self._stop.is_set():
                    writer.flush()  # closes the chunk in progress
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


class _Channels:
    def __init__(self, writer: Writer, origin_ns: int) -> None:
        self.writer = writer
        self.origin_ns = origin_ns
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
        stamp = self.origin_ns + int(seconds * 1e9)
        self.writer.add_message(channel, stamp, json.dumps(item).encode(), stamp)
