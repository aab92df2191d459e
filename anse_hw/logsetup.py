"""Where log lines go and how they look.

On a terminal: `12:00:01.234 message`, with the level named on warnings and
errors.  Under systemd (stderr is the journal's stream): `<3>message`, the
priority prefix journald understands, and no timestamp of our own, so
`journalctl -p err -u anse-hw` finds exactly the errors.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading

#: Python's levels as syslog priorities (sd-daemon(3)'s SD_ERR and friends).
SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def logs_to_journal() -> bool:
    """True when stderr is the journal's own stream: systemd sets JOURNAL_STREAM
    to its device:inode, and a shell redirect inside the service changes it."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


class JournalFormatter(logging.Formatter):
    """`<3>message`: journald reads the prefix as the line's priority (so
    `journalctl -p err` finds config errors) and stamps the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{SYSLOG_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class TerminalFormatter(logging.Formatter):
    """`12:00:01.234 message`, with WARNING/ERROR named where it matters."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno < logging.WARNING:
            return line
        clock, _, message = line.partition(" ")
        return f"{clock} {record.levelname} {message}"


class QueuedLog(logging.Handler):
    """Records go through a queue to one writer thread, so no sensor or engine
    thread ever blocks on a slow terminal or journal.  The same idea as
    logging.handlers' QueueHandler and QueueListener, which import pickle and
    more (0.6 MB of a Pi Zero's memory) for the multi-process case we lack."""

    def __init__(self, writer: logging.Handler) -> None:
        super().__init__()
        self.writer = writer
        self.records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._write, name="log-writer", daemon=True)
        self.thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.put(record)

    def _write(self) -> None:
        while (record := self.records.get()) is not None:
            self.writer.handle(record)

    def stop(self) -> None:
        """Write what is queued, then end the writer thread."""
        self.records.put(None)
        self.thread.join()


def setup_logging(debug: bool) -> QueuedLog:
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JournalFormatter() if logs_to_journal() else TerminalFormatter())
    queued = QueuedLog(stream)
    root = logging.getLogger()
    root.handlers[:] = [queued]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return queued
