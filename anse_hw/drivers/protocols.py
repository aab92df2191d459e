"""Serial frame parsers: bytes in, samples out, no I/O (the sans-I/O idea).

Each parser is fed whatever chunk the port returned, keeps the unfinished tail
for the next call, and resynchronises after garbage by sliding to the next
possible header.  The same bytes give the same samples however they are
chunked.  Every protocol has a plausible range (the datasheet's, or the line
protocol's `min`/`max`); a value outside it is not a reading (S3).  The
drivers use the parsers unchanged; the tests feed them bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, Protocol

from anse_hw.readings import Sample


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

    @property
    def buffered(self) -> int:
        """Bytes held for the next feed: never more than one frame."""
        return len(self._buf)

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

    @classmethod
    def decode(cls, frame: bytes) -> Sample:
        raise NotImplementedError


class TFminiParser(FixedFrameParser):
    """Benewake TFmini / TFmini-S / TFmini Plus / TF-Luna, 9-byte frames.

    59 59 DistL DistH StrL StrH b6 b7 CHK, distance in cm little-endian,
    CHK = low byte of the sum of bytes 0-7.  Frames whose strength is < 100 or
    65535, or whose distance is 0 or negative, are the sensor saying "no
    reading"; beyond the family's 12 m range a frame is corrupt, not a reading.
    """

    HEADER = b"\x59\x59"
    SIZE = 9
    MAX_CM = 1200

    @staticmethod
    def checksum_ok(frame: bytes) -> bool:
        return sum(frame[:8]) & 0xFF == frame[8]

    @classmethod
    def decode(cls, frame: bytes) -> Sample:
        distance = int.from_bytes(frame[2:4], "little", signed=True)
        strength = int.from_bytes(frame[4:6], "little")
        if strength < 100 or strength == 0xFFFF:
            return Sample.none(f"signal strength {strength} out of range")
        if distance <= 0:
            return Sample.none("no target (distance 0)")
        if distance > cls.MAX_CM:
            return Sample.none(f"{distance} cm is beyond the TFmini's {cls.MAX_CM} cm range")
        return Sample(float(distance))


class A02YYUWParser(FixedFrameParser):
    """DFRobot A02YYUW, 4-byte frames FF H L SUM, distance in mm big-endian;
    the datasheet's range ends at 4500 mm."""

    HEADER = b"\xff"
    SIZE = 4
    MAX_MM = 4500

    @staticmethod
    def checksum_ok(frame: bytes) -> bool:
        return (0xFF + frame[1] + frame[2]) & 0xFF == frame[3]

    @classmethod
    def decode(cls, frame: bytes) -> Sample:
        mm = (frame[1] << 8) | frame[2]
        if mm == 0:
            return Sample.none("no target (distance 0)")
        if mm > cls.MAX_MM:
            return Sample.none(f"{mm} mm is beyond the A02YYUW's {cls.MAX_MM} mm range")
        return Sample(mm / 10.0)


#: Named groups a line pattern may use, and what they are multiplied by.
LINE_GROUPS = {"value": 1.0, "cm": 1.0, "mm": 0.1}


class LineSplitter:
    """Bytes in, complete lines out (without the newline or a trailing CR).

    A line longer than `max_line` bytes is garbage and is dropped whole, up
    to its newline, however it arrives: that is what makes the output
    independent of chunking.
    """

    def __init__(self, max_line: int = 256) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False  # inside an overlong line: drop bytes up to its newline

    @property
    def buffered(self) -> int:
        """Bytes held for the next feed: never more than one line."""
        return len(self._buf)

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = self._buf
        buf += data
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > self.max_line:
                    buf.clear()
                    self._skipping = True
                return
            line = bytes(buf[:end])
            del buf[: end + 1]
            if self._skipping or len(line) > self.max_line:
                self._skipping = False
                continue
            yield line.rstrip(b"\r")


#: The longest `pattern` accepted: ten times any real one, and short enough
#: that compiling it costs nothing.
MAX_PATTERN = 1000

#: What RE2 says about Python syntax it refuses, and what to write instead.
_RE2_ADVICE = (
    (
        re.compile(r"invalid escape sequence: \\[1-9]|invalid perl operator: \(\?P$"),
        "backreferences (\\1, (?P=name)) "
        "cannot be matched in linear time: spell the repeated text out",
    ),
    (
        re.compile(r"invalid perl operator: \(\?<?[=!]"),
        "lookahead and lookbehind ((?=...), "
        "(?!...), (?<=...), (?<!...)) are not supported: match the text around the value "
        "instead, anchored with ^ and $",
    ),
    (
        re.compile(r"invalid perl operator: \(\?>|bad repetition operator: [*+?}]\+"),
        "atomic groups and possessive quantifiers are not needed (RE2 never backtracks): "
        "write (?:...), + or *",
    ),
    (re.compile(r"invalid repetition size"), "a {n,m} count may be at most 1000"),
    (re.compile(r"invalid escape sequence: \\Z"), "write $ for the end of the line"),
)


def compile_line_pattern(pattern: str) -> Any:
    """`pattern` compiled by RE2, or ValueError saying why not and what to write.

    A line pattern runs on the serial reader thread.  Python's `re` can
    backtrack exponentially (`([0-9]+)+` against 30 digits and an `x` takes
    minutes) while holding the GIL, which stalls the reflexes and the silence
    monitor with it; RE2 matches in time linear in the line, whatever the
    pattern.  The price is the few constructs that need backtracking.

    It is compiled for bytes: lines are matched as read, with no decoding,
    which google-re2's binding does more cheaply than text (whose match
    offsets it must map back to characters).
    """
    import re2  # only a robot with a line protocol pays for loading it

    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"is longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own copy of the error on stderr
    try:
        return re2.compile(pattern.encode("utf-8"), options)
    except UnicodeEncodeError:
        raise ValueError("is not text (it holds half of a UTF-16 pair)") from None
    except re2.error as exc:
        detail = _text(exc.args[0] if exc.args else "invalid")
        advice = next((text for rule, text in _RE2_ADVICE if rule.search(detail)), None)
        hint = advice or "line patterns use RE2 syntax, Python's re without backtracking"
        raise ValueError(f"is not a pattern anse-hw can use ({detail}): {hint}") from None


def _text(message: bytes | str) -> str:
    """RE2's error messages arrive as bytes."""
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _value_group(compiled: Any) -> str | None:
    """The first of LINE_GROUPS the compiled pattern names, if any."""
    names = {name.decode() for name in compiled.groupindex}
    return next((group for group in LINE_GROUPS if group in names), None)


def line_pattern_problem(pattern: str) -> str | None:
    """The config's check of a `pattern`: compiles, with a group to read."""
    try:
        group = _value_group(compile_line_pattern(pattern))
    except ValueError as exc:
        return str(exc)
    if group is None:
        return "needs a named group (?P<value>...), or (?P<cm>...) / (?P<mm>...) for distances"
    return None


class LinePattern:
    """One reading from a text line, matched by a regular expression.

    The pattern has a named group `value` (or `cm` / `mm` for distances), e.g.
    ``^D,(?P<cm>[0-9.]+)$`` for an Arduino printing ``D,42.5``.  Lines that do
    not match are not for this sensor (None); values outside [low, high] are
    not readings.  Matching is RE2's (see `compile_line_pattern`).
    """

    def __init__(self, pattern: str, low: float = -math.inf, high: float = math.inf) -> None:
        self.pattern = compile_line_pattern(pattern)
        group = _value_group(self.pattern)
        if group is None:
            raise ValueError(f"pattern needs a named group: {', '.join(LINE_GROUPS)}")
        self._group = self.pattern.groupindex[group.encode()]
        self._scale = LINE_GROUPS[group]
        self.low, self.high = low, high

    def decode(self, line: bytes) -> Sample | None:
        match = self.pattern.search(line.strip())
        if not match:
            return None
        text = match.group(self._group)
        try:
            value = float(text) * self._scale
        except (TypeError, ValueError):
            return Sample.none(f"unreadable value in {line[:40]!r}")
        if not self.low <= value <= self.high:  # also NaN and inf
            shown = text[:20].decode("ascii", "replace")
            return Sample.none(f"{shown} is outside {self.low:g}..{self.high:g}")
        return Sample(value)


class LineParser:
    """A line protocol for one sensor: a LineSplitter and a LinePattern."""

    def __init__(
        self,
        pattern: str,
        low: float = -math.inf,
        high: float = math.inf,
        max_line: int = 256,
    ) -> None:
        self.splitter = LineSplitter(max_line)
        self.pattern = LinePattern(pattern, low, high)

    @property
    def buffered(self) -> int:
        return self.splitter.buffered

    def feed(self, data: bytes) -> Iterator[Sample]:
        for line in self.splitter.feed(data):
            sample = self.pattern.decode(line)
            if sample is not None:
                yield sample


DEFAULT_LINE_PATTERN = r"(?P<value>-?[0-9]+(?:\.[0-9]+)?)"
BAUDRATES = {"tfmini": 115200, "a02yyuw": 9600, "line": 115200}


def make_parser(
    protocol: str, pattern: str | None = None, low: float = -math.inf, high: float = math.inf
) -> FrameParser:
    if protocol == "tfmini":
        return TFminiParser()
    if protocol == "a02yyuw":
        return A02YYUWParser()
    if protocol == "line":
        return LineParser(pattern or DEFAULT_LINE_PATTERN, low, high)
    raise ValueError(f"unknown protocol {protocol!r}")


def tfmini_frame(cm: int, strength: int = 1000) -> bytes:
    """Encode a TFmini frame (used by the tests, the benchmarks and emulators)."""
    body = b"\x59\x59" + cm.to_bytes(2, "little", signed=True) + strength.to_bytes(2, "little")
    body += b"\x00\x00"
    return body + bytes([sum(body) & 0xFF])


def a02yyuw_frame(mm: int) -> bytes:
    high, low = (mm >> 8) & 0xFF, mm & 0xFF
    return bytes([0xFF, high, low, (0xFF + high + low) & 0xFF])
