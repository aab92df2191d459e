"""Where log lines go and how they look.

On a terminal: `12:00:01.234 message`, with the level named on warnings and
errors.  Under systemd (stderr is the journal's stream): `<3>message`, the
priority prefix journald understands, and no timestamp of our own, so
`journalctl -p err -u anse-hw` finds exactly the errors.

A log line can never stop the daemon: when the terminal is gone (an SSH
session closed under a daemon started in it) or the reader of a pipe left,
the next write fails, and from then on stderr is /dev/null.
"""

from __future__ import annotations

import contextlib
import errno
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


#: Write errors that mean the terminal or the pipe is gone for good.
GONE = frozenset({errno.EIO, errno.EPIPE, errno.ENXIO, errno.EBADF})


class StderrHandler(logging.StreamHandler):
    """stderr, for a daemon that must outlive its terminal."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            if exc.errno in GONE:
                silence(self.stream)
            return  # a full disk under `2>file`: this line is lost, nothing else
        super().handleError(record)  # a mistake in a log call: say so


def silence(stream: object) -> None:
    """Point `stream`'s file descriptor, and stdout's if it is the same file,
    at /dev/null: the writes that follow (the buffered rest, the
    interpreter's flush at exit) succeed and go nowhere."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        gone = os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for target in {fd, 1}:
            try:
                if os.path.samestat(os.fstat(target), gone):
                    os.dup2(null, target)
            except OSError:
                pass
    finally:
        os.close(null)


def say_now(text: str) -> None:
    """One line straight to stderr, past the queue, for the last words before
    a forced exit; nothing if stderr is gone."""
    with contextlib.suppress(OSError):
        os.write(2, (text + "\n").encode())


def stream_handler() -> logging.Handler:
    """stderr, formatted for the journal or for a terminal."""
    handler = StderrHandler(sys.stderr)
    handler.setFormatter(JournalFormatter() if logs_to_journal() else TerminalFormatter())
    return handler


class HeldLog(logging.Handler):
    """Records kept in memory, written later with `write_to`: for a process
    that must act before it may block on a write (the guardian)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def write_to(self, handler: logging.Handler) -> None:
        for record in self.records:
            handler.handle(record)


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
    queued = QueuedLog(stream_handler())
    root = logging.getLogger()
    root.handlers[:] = [queued]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return queued
