"""A config file is untrusted input: values that would disable a stop, and files
built to hang or exhaust the loader, end in exit 2 with a file:line message."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anse_hw import config
from anse_hw.app import cli
from tests.test_config import GOOD, run_cli

PAIR = GOOD + ("  - {name: go, sensor: front, above: 15, actuator: movement, command: move}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("below: 10", "below: .nan"), ["robot.yaml:9:", "not a finite number"]),
        (GOOD.replace("below: 10", "below: -5"), ["reflexes[0].below", "would never fire"]),
        (GOOD.replace("below: 10", "below: 1e308"), ["reflexes[0].below", "outside what a"]),
        (GOOD.replace("interval: 0.1", "interval: .inf"), ["robot.yaml:4:", "not a finite"]),
        (
            GOOD.replace("interval: 0.1", "interval: 0.1\n    max_age: 1e9"),
            ["sensors[0].max_age", "must be from 0.05 to 120 seconds"],
        ),
        (
            GOOD.replace("interval: 0.1", "interval: 0.1\n    max_age: 0.1"),
            ["sensors[0].max_age", "must be longer than the interval"],
        ),
        (
            PAIR.replace("below: 10", "below: 20"),
            ["robot.yaml:10:", "reflexes[1]", "both hold between 15 and 20", "flap"],
        ),
        (
            PAIR.replace("above: 15", "below: 50"),
            ["reflexes[1]", "both hold", "hysteresis"],
        ),
        (
            GOOD.replace("    interval: 0.1\n", "    interval: 0.1\n    interval: 0.2\n"),
            ["robot.yaml:5:", "duplicate key 'interval' (first given on line 4)"],
        ),
        (GOOD.replace("10", "1" * 300), ["robot.yaml:9:", "integer with 300 digits"]),
        ("a: " + "[" * 5000, ["robot.yaml:1:", "nested more than 32 levels"]),
        (GOOD + "x: &x [*x]\n", ["refers to itself"]),
    ],
    ids=[
        "nan-threshold",
        "negative-below",
        "1e308-threshold",
        "inf-interval",
        "huge-max-age",
        "max-age-not-longer-than-interval",
        "inverted-hysteresis",
        "same-direction-pair",
        "duplicate-key",
        "300-digit-integer",
        "deep-nesting",
        "recursive-alias",
    ],
)
def test_values_that_would_disable_safety_or_break_the_loader_exit_2(tmp_path, text, expected):
    path = tmp_path / "robot.yaml"
    path.write_text(text)
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2, result.stdout + result.stderr
    for fragment in expected:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.stderr


def test_an_exponent_without_a_dot_is_a_number():
    """YAML 1.1 reads `1e1` as a string; users mean ten."""
    parsed = config.parse(GOOD.replace("below: 10", "below: 1e1"))
    assert parsed.reflexes[0].below == 10.0


@contextlib.contextmanager
def counting_calls() -> Iterator[list[int]]:
    """The Python and C function calls made inside the block, in `[0]`: work
    counted the same on a fast, a slow or a busy machine, where CPU seconds
    are not (the time itself is in benchmarks/pieces.py)."""
    calls = [0]

    def profile(frame, event, arg) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


@functools.cache
def work_bound(check: bool = False) -> int:
    """A hundred times the calls a robot's whole config takes (parsed, or
    through `--check`): an exponential expansion or a recursion would blow
    through it by orders of magnitude, a linear loader stays far below."""
    with counting_calls() as calls:
        if check:
            with contextlib.redirect_stdout(None):
                cli.main(["--config", str(_pair_file()), "--check"])
        else:
            config.parse(PAIR, "robot.yaml")
    return 100 * calls[0]


@functools.cache
def _pair_file() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="anse-hw-hostile-"))
    (folder / "robot.yaml").write_text(PAIR)
    return folder / "robot.yaml"


def alias_bomb(levels: int = 30) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return GOOD + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (alias_bomb(), "expands to more than 20000 values"),
        (GOOD.replace("below: 10", "below: .nan"), "not a finite number"),
        ("a: " + "[" * 60000, "nested more than"),
        ("x: " + "9" * 60000, "digits is out of range"),
    ],
    ids=["alias-bomb", "nan", "deep-nesting", "long-integer"],
)
def test_hostile_files_are_refused_in_bounded_time_and_memory(text, message):
    """Bounded work (function calls, see work_bound) and memory: an exponential
    expansion or a recursion would blow through either by orders of magnitude."""
    bound = work_bound()
    tracemalloc.start()
    with counting_calls() as calls, pytest.raises(config.ConfigError) as caught:
        config.parse(text, "robot.yaml")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert message in str(caught.value)
    assert calls[0] < bound, f"{calls[0]} calls"
    assert peak < 40 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


def test_non_utf8_bytes_are_named_with_their_line(tmp_path):
    path = tmp_path / "robot.yaml"
    path.write_bytes(GOOD.encode().replace(b"front", b"fr\xffont", 1))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert "robot.yaml:2: is not UTF-8 text (byte 0xff" in result.stderr


def test_a_fifo_a_device_a_directory_and_a_huge_file_are_refused(tmp_path):
    fifo = tmp_path / "robot.fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * 40_000 + "\n" + GOOD)
    for path, message in (
        (fifo, "is a FIFO, not a regular file"),
        ("/dev/zero", "is a character device, not a regular file"),
        (tmp_path, "is a directory, not a regular file"),
        (huge, "is larger than 32 KiB"),
    ):
        # A FIFO with no writer would block a plain open() forever: the timeout
        # in run_cli turns that hang into a failure.
        result = run_cli("--config", str(path), "--check")
        assert result.returncode == 2, (path, result.stderr)
        assert message in result.stderr


def _mutations():
    base = PAIR.encode()
    edit = st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(0, len(base) - 1),
        st.binary(min_size=1, max_size=8)
        | st.sampled_from(
            [b"[", b"{", b"&a", b"*a", b": ", b"\n  ", b".nan", b"-", b"1e999", b"\xff", b"\t"]
        ),
    )
    return st.lists(edit, min_size=1, max_size=6).map(lambda edits: _apply(base, edits))


def _apply(data: bytes, edits) -> bytes:
    for op, at, chunk in edits:
        at %= max(1, len(data))
        if op == "insert":
            data = data[:at] + chunk + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + len(chunk) :]
        else:
            data = data[:at] + chunk + data[at + len(chunk) :]
    return data


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_mutations())
def test_mutated_configs_exit_0_or_2_never_a_traceback(tmp_path, capsys, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    bound = work_bound(check=True)
    with counting_calls() as calls:
        code = cli.main(["--config", str(path), "--check"])
    out = capsys.readouterr()
    assert code in (0, 2), out.err
    assert "Traceback" not in out.err
    assert calls[0] < bound, (calls[0], data)
