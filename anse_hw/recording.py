"""Recording (SPEC §15): MCAP files that Foxglove opens and replay reads back.

What goes in a file: every raw reading per sensor as it arrived (its value,
or the reason there was none, and faults of the device) on `/readings/<name>`,
every wire event on `/events`, both JSON with JSON schemas, and the config
the daemon ran with in a metadata record `anse-hw`, its secrets redacted.

The engine hands readings over with `Recorder.reading` (a deque append: the
reflex path waits on nothing), the daemon hands events over with `offer`; a
writer thread of its own writes them.  Messages go straight to the file (no
chunks) and the file is flushed and synced every second, so a SIGKILL or a
power cut loses about a second, and `read` opens a file that was cut short.
Files rotate at `max_mb`, the newest `keep` are kept.  When the disk is full
or read-only the recorder says so once and stops; the robot goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from mcap.exceptions import McapError
from mcap.records import Channel, Message, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import Writer

from anse_hw import __version__, events, files, yamlfile
from anse_hw.drivers.base import DriverError, Sample

log = logging.getLogger("anse_hw.recording")

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
        self._queue: deque[tuple[str, Any, float]] = deque()
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
        if self.failed is not None:
            return
        if len(self._queue) >= QUEUE:
            self._drop_telemetry()
        self._queue.append(item)

    def _drop_telemetry(self) -> None:
        """The disk is slower than the robot: drop the oldest telemetry (a sensor
        or worldmodel event) and keep readings, reflex and actuator events.  Only
        when nothing else is left (a disk that stopped) does the oldest item go,
        so the queue stays bounded whatever happens."""
        index = next(
            (
                i
                for i, (kind, item, _) in enumerate(self._queue)
                if kind == "event" and item["type"] in (events.SENSOR, events.WORLDMODEL)
            ),
            0,
        )
        del self._queue[index]
        self.dropped += 1
        if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
            log.warning("recording: %d telemetry events dropped (disk too slow)", self.dropped)

    # -- the writer thread --------------------------------------------------------

    def _run(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            while not self._stop.is_set():
                self._write_one_file()
        except OSError as exc:
            self.failed = f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or self.dir})"
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
                while self._queue:
                    kind, item, when = self._queue.popleft()
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


@dataclass
class Recording:
    path: Path
    config_yaml: str = ""
    readings: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True  # False: cut short (a crash); what is there is read
    ended: str = ""  # "shutdown" | "rotated" | "" (cut short)

    @property
    def sensors(self) -> list[str]:
        return sorted({r["sensor"] for r in self.readings})

    @property
    def span(self) -> float:
        return self.readings[-1]["arrived"] - self.readings[0]["arrived"] if self.readings else 0

    def decisions(self) -> list[tuple]:
        return decisions(self.events)


def decisions(stream: list[dict[str, Any]]) -> list[tuple]:
    """What --verify compares: every reflex and actuator event, in order."""
    out = []
    for e in stream:
        d = e["data"]
        if e["type"] == events.REFLEX:
            out.append(("reflex", d["reflex_name"], d["condition"], d["triggered"]))
        elif e["type"] == events.ACTUATOR:
            out.append(("actuator", d["actuator_name"], d["state"]))
    return out


def read(path: Path) -> Recording:
    """Everything in the file up to where it ends or was cut short."""
    recording = Recording(Path(path))
    channels: dict[int, str] = {}
    with open(path, "rb") as handle:
        try:
            for record in StreamReader(handle, skip_magic=False).records:
                if isinstance(record, Metadata) and record.name == "anse-hw":
                    recording.config_yaml = record.metadata.get("config_yaml", "")
                elif isinstance(record, Metadata) and record.name == "anse-hw-end":
                    recording.ended = record.metadata.get("ended", "")
                elif isinstance(record, Channel):
                    channels[record.id] = record.topic
                elif isinstance(record, Message):
                    topic = channels.get(record.channel_id, "")
                    data = json.loads(record.data)
                    if topic == "/events":
                        recording.events.append(data)
                    elif topic.startswith("/readings/"):
                        recording.readings.append(data)
                elif isinstance(record, Schema):
                    continue
        except (McapError, EOFError, ValueError, RecursionError) as exc:
            recording.complete = False
            log.warning("%s ends early (%s): read what is there", path, type(exc).__name__)
    return recording


def recordings_in(directory: Path) -> Iterator[Recording]:
    for path in sorted(Path(directory).glob("*.mcap")):
        yield read(path)
