"""Opening a file the user named, without trusting it.

Every file the daemon reads because a config value, an environment variable
or a command-line argument names it (the config itself, the control token,
the MQTT password, the state files, recordings, sysfs paths, traces) is
opened here, so that one set of rules holds for all of them:

- the path is text without NUL bytes (the C layer would refuse it with a
  ValueError, not an OSError);
- it is opened with O_NONBLOCK and O_NOCTTY, so a FIFO with no writer or a
  terminal cannot hang the open, and then it must be a regular file (a FIFO,
  a device such as /dev/zero, a directory or a socket is refused by name);
- at most `limit` bytes are read: a larger file is refused, never read whole;
- text is strict UTF-8.

A refusal is a `FileProblem` whose message is one line naming the file; the
caller prefixes the config key it came from.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

__all__ = ["FileProblem", "file_kind", "open_regular", "path_problem", "read_bytes", "read_text"]


class FileProblem(Exception):
    """Why a file cannot be used.  `str()` is one line naming the file
    ("/etc/x is a FIFO, not a regular file"); `reason` is the same without
    the name, for a caller that already shows it; `line` is set (1-based)
    for text that is not UTF-8."""

    def __init__(self, path: str | os.PathLike[str], reason: str, line: int | None = None) -> None:
        self.path = _shown(path)
        self.reason = reason
        self.line = line
        super().__init__(f"{self.path} {reason}")


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """What makes `path` unusable as a file name before it is even tried."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        return "must be a text path"
    if not text:
        return "is empty; give a path"
    if "\0" in text:
        return "contains a NUL byte"
    return None


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message ("a FIFO", "a directory")."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _open_fd(path: str | os.PathLike[str]) -> int:
    """An fd of a regular file, opened without blocking; FileProblem otherwise."""
    problem = path_problem(path)
    if problem:
        raise FileProblem(path, problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise FileProblem(path, f"cannot be read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise FileProblem(path, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileProblem(path, f"is {file_kind(mode)}, not a regular file")
    # A regular file never blocks; reads from here on are ordinary ones.
    os.set_blocking(fd, True)
    return fd


def read_bytes(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole content of a regular file of at most `limit` bytes."""
    fd = _open_fd(path)
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblem(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileProblem(path, f"is larger than {_size(limit)}")
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], limit: int) -> str:
    """`read_bytes`, decoded as strict UTF-8."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileProblem(
            path,
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            line,
        ) from None


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """A regular file opened for streaming reads (recordings, of any size)."""
    return os.fdopen(_open_fd(path), "rb")


def _shown(path: str | os.PathLike[str]) -> str:
    """The path as a message shows it: escaped, and cut if absurdly long."""
    text = repr(os.fspath(path))[1:-1]
    return text if len(text) <= 200 else text[:200] + "…"


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"
