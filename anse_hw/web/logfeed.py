"""The daemon's log on the stream, for logged-in operators only.

ESPHome's web server streams its log; an operator should not need a shell
on the Pi to read why a motor stopped.  `LogFeed` is a logging handler that
keeps the last `LINES` records of INFO and above in a ring; the hub sends
each operator's WebSocket the ring on connect and then every new line
(docs/protocol.md, "The daemon's log").  A read-only client never gets it:
the log names addresses and what operators did.

`emit` runs on whatever thread logged (the engine's, under its lock), so it
only appends the record: formatting happens on the event loop, when a line
is sent.  Bounded: a ring, and an operator that falls behind skips to what
the ring still holds.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import deque
from typing import Any

__all__ = ["LINES", "LogFeed"]

#: Lines kept, and sent to an operator who connects.
LINES = 200


class LogFeed(logging.Handler):
    def __init__(self, lines: int = LINES) -> None:
        super().__init__(logging.INFO)
        self._numbers = itertools.count(1)
        self._ring: deque[tuple[int, logging.LogRecord]] = deque(maxlen=lines)
        self._lock = threading.Lock()  # numbering and appending stay in order

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self._ring.append((next(self._numbers), record))

    def after(self, seen: int) -> tuple[int, list[str]]:
        """The frames of the lines numbered above `seen`, and the newest number."""
        with self._lock:
            new = [(n, r) for n, r in self._ring if n > seen]
        if not new:
            return seen, []
        return new[-1][0], [frame(record) for _, record in new]


def frame(record: logging.LogRecord) -> str:
    """One `log` frame: not an event (no seq), like a command's reply."""
    try:
        message = record.getMessage()
    except Exception:  # a mistake in a log call: still a line, never a crash
        message = str(record.msg)
    data: dict[str, Any] = {
        "level": record.levelname,
        "logger": record.name,
        "message": message,
        "timestamp": _timestamp(record.created),
    }
    return json.dumps({"type": "log", "data": data}, allow_nan=False)


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
