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


class FixedFrameParser:
    """Fixed-size binary frames that start with HEADER and carry a checksum.

    Garbage before a header is skipped; a header whose frame fails the checksum
    was not a frame after all, so the search resumes one byte later.
    """

    HEADER: bytes = b""
    SIZE: int = 0

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Sample]:
        buf = self._buf
        buf += data
        while True:
            start = buf.find(self.HEADER)
            if start < 0:
                # Keep a possible partial header at the end for the next chunk.
                del buf[: max(0, len(buf) - len(self.HEADER) + 1)]
                return
            del buf[:start]
            if len(buf) < self.SIZE:
                return
            frame = bytes(buf[: self.SIZE])
            if not self.checksum_ok(frame):
                del buf[:1]
                continue
            del buf[: self.SIZE]
            yield self.decode(frame)

    @staticmethod
    def checksum_ok(frame: bytes) -> bool:
        raise NotImplementedError

    @staticmethod
    def decode(frame: bytes) -> Sample:
        raise NotImplementedError


class TFminiParser(FixedFrameParser):
    """Benewake TFmini / TFmini-S / TFmini Plus / TF-Luna, 9-byte frames.

    59 59 DistL DistH StrL StrH b6 b7 CHK, distance in cm little-endian,
    CHK = low byte of the sum of bytes 0-7.  Frames whose strength is < 100 or
    65535, or whose distance is 0 or negative, are the sensor saying "no reading".
    """

    HEADER = b"\x59\x59"
    SIZE = 9

    @staticmethod
    def checksum_ok(frame: bytes) -> bool:
        return sum(frame[:8]) & 0xFF == frame[8]

    @staticmethod
    def decode(frame: bytes) -> Sample:
        distance = int.from_bytes(frame[2:4], "little", signed=True)
        strength = int.from_bytes(frame[4:6], "little")
        if strength < 100 or strength == 0xFFFF:
            return Sample.none(f"signal strength {strength} out of range")
        if distance <= 0:
            return Sample.none("no target (distance 0)")
        return Sample(float(distance))


class A02YYUWParser(FixedFrameParser):
    """DFRobot A02YYUW, 4-byte frames FF H L SUM, distance in mm big-endian."""

    HEADER = b"\xff"
    SIZE = 4

    @staticmethod
    def checksum_ok(frame: bytes) -> bool:
        return (0xFF + frame[1] + frame[2]) & 0xFF == frame[3]

    @staticmethod
    def decode(frame: bytes) -> Sample:
        mm = (frame[1] << 8) | frame[2]
        return Sample(mm / 10.0) if mm > 0 else Sample.none("no target (distance 0)")


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
