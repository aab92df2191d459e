"""Serial frame parsers: bytes in, samples out, no I/O (the sans-I/O idea).

Each parser is fed whatever chunk the port returned, keeps the unfinished tail
for the next call, and resynchronises after garbage by sliding to the next
possible header.  The drivers use them unchanged; the tests feed them bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from drivers.base import Sample


class FrameParser(Protocol):
    def feed(self, data: bytes) -> Iterator[Sample]:
        """Consume `data` and yield one Sample per complete frame."""
        ...


class TFminiParser:
    """Benewake TFmini / TFmini-S / TFmini Plus / TF-Luna, 9-byte frames.

    59 59 DistL DistH StrL StrH b6 b7 CHK, distance in cm little-endian,
    CHK = low byte of the sum of bytes 0-7.  Frames with a bad checksum are
    dropped; frames whose strength is < 100 or 65535, or whose distance is 0,
    are the sensor saying "no reading".
    """

    HEADER = b"\x59\x59"
    SIZE = 9

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Sample]:
        buf = self._buf
        buf += data
        while True:
            start = buf.find(self.HEADER)
            if start < 0:
                del buf[: max(0, len(buf) - 1)]  # keep a lone 0x59: it may start a header
                return
            del buf[:start]
            if len(buf) < self.SIZE:
                return
            frame = bytes(buf[: self.SIZE])
            if sum(frame[:8]) & 0xFF != frame[8]:
                del buf[:1]  # not a frame after all: look for the next header
                continue
            del buf[: self.SIZE]
            yield self.decode(frame)

    @staticmethod
    def decode(frame: bytes) -> Sample:
        distance = int.from_bytes(frame[2:4], "little", signed=True)
        strength = int.from_bytes(frame[4:6], "little")
        if strength < 100 or strength == 0xFFFF:
            return Sample.none(f"signal strength {strength} out of range")
        if distance <= 0:
            return Sample.none("no target (distance 0)")
        return Sample(float(distance))


class A02YYUWParser:
    """DFRobot A02YYUW, 4-byte frames FF H L SUM, distance in mm big-endian."""

    SIZE = 4

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Sample]:
        buf = self._buf
        buf += data
        while True:
            start = buf.find(0xFF)
            if start < 0:
                buf.clear()
                return
            del buf[:start]
            if len(buf) < self.SIZE:
                return
            high, low, checksum = buf[1], buf[2], buf[3]
            if (0xFF + high + low) & 0xFF != checksum:
                del buf[:1]
                continue
            del buf[: self.SIZE]
            mm = (high << 8) | low
            yield Sample(mm / 10.0) if mm > 0 else Sample.none("no target (distance 0)")


class LineParser:
    """One reading per text line, matched by a regular expression.

    The pattern has a named group `cm` or `mm`, e.g. ``^D,(?P<cm>[0-9.]+)$`` for
    an Arduino printing ``D,42.5``.  Lines that do not match are skipped; a
    line longer than `max_line` bytes is garbage and is thrown away.
    """

    def __init__(self, pattern: str, max_line: int = 256) -> None:
        self.pattern = re.compile(pattern)
        groups = self.pattern.groupindex
        if "cm" not in groups and "mm" not in groups:
            raise ValueError("pattern needs a named group (?P<cm>...) or (?P<mm>...)")
        self._unit, self._scale = ("cm", 1.0) if "cm" in groups else ("mm", 0.1)
        self.max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Sample]:
        buf = self._buf
        buf += data
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > self.max_line:
                    buf.clear()
                return
            line = bytes(buf[:end]).rstrip(b"\r")
            del buf[: end + 1]
            if len(line) > self.max_line:
                continue
            sample = self.decode(line)
            if sample is not None:
                yield sample

    def decode(self, line: bytes) -> Sample | None:
        match = self.pattern.search(line.decode("ascii", "replace").strip())
        if not match:
            return None
        try:
            value = float(match.group(self._unit)) * self._scale
        except (TypeError, ValueError):
            return Sample.none(f"unreadable value in {line!r}")
        return Sample(value)


BAUDRATES = {"tfmini": 115200, "a02yyuw": 9600, "line": 115200}


def make_parser(protocol: str, pattern: str | None = None) -> FrameParser:
    if protocol == "tfmini":
        return TFminiParser()
    if protocol == "a02yyuw":
        return A02YYUWParser()
    if protocol == "line":
        return LineParser(pattern or r"(?P<cm>-?[0-9]+(?:\.[0-9]+)?)")
    raise ValueError(f"unknown protocol {protocol!r}")


def tfmini_frame(cm: int, strength: int = 1000) -> bytes:
    """Encode a TFmini frame (used by the tests, the benchmarks and emulators)."""
    body = b"\x59\x59" + cm.to_bytes(2, "little", signed=True) + strength.to_bytes(2, "little")
    body += b"\x00\x00"
    return body + bytes([sum(body) & 0xFF])


def a02yyuw_frame(mm: int) -> bytes:
    high, low = (mm >> 8) & 0xFF, mm & 0xFF
    return bytes([0xFF, high, low, (0xFF + high + low) & 0xFF])
