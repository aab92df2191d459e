"""The serial frame parsers, on bytes alone (no port, no threads)."""

from __future__ import annotations

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from anse_hw.drivers.protocols import (
    A02YYUWParser,
    LineParser,
    TFminiParser,
    a02yyuw_frame,
    tfmini_frame,
)


def values(parser, data: bytes) -> list[float | None]:
    return [s.value for s in parser.feed(data)]


def test_tfmini_decodes_little_endian_centimetres():
    assert values(TFminiParser(), tfmini_frame(42) + tfmini_frame(0x0203)) == [42.0, 515.0]


def test_tfmini_rejects_weak_saturated_and_zero_readings():
    parser = TFminiParser()
    samples = list(
        parser.feed(
            tfmini_frame(42, strength=99)
            + tfmini_frame(42, strength=65535)
            + tfmini_frame(0)
            + tfmini_frame(-5)
            + tfmini_frame(30)
        )
    )
    assert [s.valid for s in samples] == [False, False, False, False, True]
    assert "strength" in samples[0].problem
    assert samples[-1].value == 30.0


def test_tfmini_skips_bad_checksum_and_resynchronises():
    corrupt = bytearray(tfmini_frame(77))
    corrupt[8] ^= 0xFF
    data = b"\x59\x00\x59" + bytes(corrupt) + b"\x59\x59\x01" + tfmini_frame(12)
    assert values(TFminiParser(), data) == [12.0]


def test_tfmini_frame_split_across_reads():
    frame = tfmini_frame(250)
    parser = TFminiParser()
    got = []
    for byte in frame:
        got += values(parser, bytes([byte]))
    assert got == [250.0]


def test_a02yyuw_decodes_big_endian_millimetres():
    assert values(A02YYUWParser(), a02yyuw_frame(1234) + a02yyuw_frame(95)) == [123.4, 9.5]


def test_a02yyuw_skips_corrupt_frames():
    bad = bytearray(a02yyuw_frame(500))
    bad[3] ^= 0x01
    assert values(A02YYUWParser(), b"\x13\xff" + bytes(bad) + a02yyuw_frame(700)) == [70.0]


def test_line_parser_with_cm_and_mm_groups():
    cm = LineParser(r"^D,(?P<cm>[0-9.]+)$")
    assert values(cm, b"D,42.5\r\nhello\nD,7\n") == [42.5, 7.0]
    mm = LineParser(r"dist=(?P<mm>\d+)")
    assert values(mm, b"dist=1234\n") == [123.4]


def test_line_parser_drops_overlong_garbage_and_recovers():
    parser = LineParser(r"^D,(?P<cm>[0-9.]+)$", max_line=32)
    assert values(parser, b"\x00" * 500) == []
    assert values(parser, b"junk\nD,12.5\n") == [12.5]


def test_line_parser_partial_line_waits_for_the_newline():
    parser = LineParser(r"^D,(?P<cm>[0-9.]+)$")
    assert values(parser, b"D,4") == []
    assert values(parser, b"2.5\n") == [42.5]


garbage = st.binary(max_size=64)
# Garbage that cannot start a frame, so a real frame can never be swallowed by a
# chance checksum match (that case is covered by the deterministic tests above).
no_tfmini_header = st.lists(st.integers(0, 255).filter(lambda b: b != 0x59), max_size=64).map(bytes)
no_a02_header = st.lists(st.integers(0, 254), max_size=64).map(bytes)
distances = st.integers(min_value=1, max_value=1200)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(no_tfmini_header, distances), max_size=8),
    st.sampled_from([b"", b"\x59", b"\x59\x59\x01\x02"]),
    st.integers(1, 13),
)
def test_tfmini_finds_every_frame_among_random_garbage(chunks, tail, split):
    stream = b"".join(junk + tfmini_frame(cm) for junk, cm in chunks) + tail
    parser = TFminiParser()
    got = []
    for i in range(0, len(stream), split):
        got += [s.value for s in parser.feed(stream[i : i + split]) if s.valid]
    # A trailing partial frame waits for more bytes; every complete frame is found.
    assert got == [float(cm) for _, cm in chunks]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(no_a02_header, st.integers(1, 4500)), max_size=8), st.integers(1, 7))
def test_a02yyuw_finds_every_frame_among_random_garbage(chunks, split):
    stream = b"".join(junk + a02yyuw_frame(mm) for junk, mm in chunks)
    parser = A02YYUWParser()
    got = []
    for i in range(0, len(stream), split):
        got += [s.value for s in parser.feed(stream[i : i + split]) if s.valid]
    assert got == [mm / 10 for _, mm in chunks]


@settings(max_examples=200, deadline=None)
@given(garbage)
def test_parsers_never_raise_and_never_yield_nonsense_on_garbage(data):
    for parser in (TFminiParser(), A02YYUWParser(), LineParser(r"(?P<cm>[0-9.]+)")):
        for sample in parser.feed(data):
            assert sample.value is None or sample.value == sample.value  # never NaN


def test_values_beyond_the_datasheet_range_are_not_readings():
    tf = list(TFminiParser().feed(tfmini_frame(1200) + tfmini_frame(1201) + tfmini_frame(30000)))
    assert [s.value for s in tf] == [1200.0, None, None]
    assert "beyond the TFmini's 1200 cm range" in tf[1].problem
    a02 = list(A02YYUWParser().feed(a02yyuw_frame(4500) + a02yyuw_frame(4501)))
    assert [s.value for s in a02] == [450.0, None]


def test_line_values_outside_min_max_are_not_readings():
    parser = LineParser(r"^T,(?P<value>\S+)", low=-55, high=125, max_line=512)
    got = list(parser.feed(b"T,23.5\nT," + b"9" * 256 + b"\nT,-60\nT,nan\nT,1e999\n"))
    assert [s.value for s in got] == [23.5, None, None, None, None]


def _chunked(parser, data: bytes, cuts: list[int]) -> list[tuple]:
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    out = []
    for start, end in itertools.pairwise(bounds):
        out += [(s.value, s.problem) for s in parser.feed(data[start:end])]
    return out


# Bytes with plenty of newlines, headers and digits, so lines and frames occur.
protocol_bytes = st.lists(
    st.sampled_from([b"\n", b"\r\n", b"D,", b"42.5", b"#" * 33, b"\x59\x59", b"\xff"])
    | st.binary(max_size=12),
    max_size=40,
).map(b"".join)
cuts = st.lists(st.integers(0, 2000), max_size=12)


def _parsers():
    return (
        TFminiParser(),
        A02YYUWParser(),
        LineParser(r"^D,(?P<cm>[0-9.]+)$", low=0, high=1000, max_line=32),
    )


@settings(max_examples=400, deadline=None)
@given(protocol_bytes, cuts)
@example(b"#" * 33 + b"D,42.5\n", [33])  # an overlong line cut where the buffer overflows
def test_the_same_bytes_give_the_same_readings_however_they_are_chunked(data, cut_at):
    for whole, pieces in zip(_parsers(), _parsers(), strict=True):
        assert _chunked(pieces, data, cut_at) == [(s.value, s.problem) for s in whole.feed(data)]


@settings(max_examples=400, deadline=None)
@given(protocol_bytes)
def test_every_valid_reading_lies_in_its_protocol_range(data):
    limits = ((1, 1200), (0.1, 450), (0, 1000))
    for parser, (low, high) in zip(_parsers(), limits, strict=True):
        for sample in parser.feed(data):
            assert sample.value is None or low <= sample.value <= high, sample
