"""Line-protocol patterns are user input that runs on the serial reader
thread: none may stall the reflexes (RE2, linear time), and the ones RE2
cannot run are refused at --check with the reason and what to write instead."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from anse_hw.drivers.protocols import LineParser, LinePattern, LineSplitter
from tests.conftest import pin, run_cli, wait_for, write_config
from tests.serialdev import PtyDevice

#: Exponential in Python's re: `D,` + 30 digits + `x` takes minutes, holding the GIL.
NESTED = r"^D,(?P<cm>([0-9]+)+)$"
#: What NESTED means, written so that no engine backtracks.
FLAT = r"^D,(?P<cm>[0-9]+)$"


def line_sensor(pattern: str, port: str = "/dev/null") -> str:
    return (
        "sensors:\n"
        f"  - {{name: front, driver: serial, port: {port}, protocol: line,\n"
        f"     pattern: '{pattern}'}}\n"
    )


@pytest.mark.parametrize(
    ("pattern", "advice"),
    [
        (r"^D,(?P<cm>[0-9]+),\1$", "backreferences"),
        (r"^D,(?P<cm>[0-9]+),(?P=cm)$", "backreferences"),
        (r"^(?=D,)D,(?P<cm>[0-9]+)$", "lookahead and lookbehind"),
        (r"(?<=D,)(?P<cm>[0-9]+)$", "lookahead and lookbehind"),
        (r"^D,(?P<cm>[0-9]++)$", "possessive quantifiers are not needed"),
        (r"^D,(?>(?P<cm>[0-9]+))$", "atomic groups"),
        (r"^D,(?P<cm>[0-9]{1,5000})$", "at most 1000"),
        (r"^D,(?P<cm>[0-9]+)\Z", "write $ for the end of the line"),
        (r"^D,(?P<cm>[0-9]+" + "|x" * 600 + ")$", "longer than 1000 characters"),
        (r"^D,(?P<cm>[0-9]+$", "missing )"),
    ],
    ids=[
        "backreference",
        "named-backreference",
        "lookahead",
        "lookbehind",
        "possessive",
        "atomic",
        "huge-count",
        "python-end",
        "too-long",
        "unbalanced",
    ],
)
def test_check_refuses_patterns_re2_cannot_run_saying_what_to_write(tmp_path, pattern, advice):
    path = write_config(tmp_path, line_sensor(pattern))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line: RE2's own log stays quiet
    assert "robot.yaml:3: sensors[0].pattern:" in lines[0]
    assert advice in lines[0]
    assert "Traceback" not in result.stderr


def test_check_accepts_the_nested_quantifier_pattern_that_froze_the_reflexes(tmp_path):
    path = write_config(tmp_path, line_sensor(NESTED, "/dev/null"))
    result = run_cli("--config", str(path), "--check")
    assert "sensors[0].pattern" not in result.stderr, result.stderr


adversarial_lines = st.builds(
    lambda prefix, digits, tail: (prefix + digits + tail).encode(),
    st.sampled_from(["D,", "D,,", "d,", "", "D,-", "T,"]),
    st.text("0123456789", max_size=250),
    st.sampled_from(["", "x", "!", ",", "\r", " ", "\xff", "0" * 3, "D,1"]),
)


@settings(max_examples=500, deadline=None)
@given(adversarial_lines)
@example(b"D," + b"1" * 28 + b"x")  # the line from the report: 10.6 s in Python's re
@example(b"D," + b"9" * 250 + b"!")
def test_the_nested_pattern_decodes_adversarial_lines_as_its_flat_twin(line):
    """Same readings as the pattern written without nesting, for every line;
    under a backtracking engine the first example alone would not finish."""
    nested, flat = LinePattern(NESTED), LinePattern(FLAT)
    assert nested.decode(line) == flat.decode(line)
    reference = re.search(FLAT, line.decode("ascii", "replace").strip())
    assert (nested.decode(line) is None) == (reference is None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=600) | st.just(b"1" * 300), max_size=30))
def test_the_splitter_never_holds_more_than_one_line(chunks):
    """A device that never sends a newline cannot make the reader keep its
    output: what is held between reads stays within one line."""
    splitter = LineSplitter(max_line=256)
    parser = LineParser(NESTED)
    for chunk in chunks:
        for line in splitter.feed(chunk):
            assert len(line) <= 256
        list(parser.feed(chunk))
        assert splitter.buffered <= 256 and parser.buffered <= 256


def test_adversarial_lines_on_the_port_never_delay_the_stop(start_daemon, watch, tmp_path):
    """The report's attack, as a process: a line-protocol sensor with the
    nested-quantifier pattern, a motor on mock pins, and a device that mixes
    40-digit garbage lines (hours each for a backtracking engine, which holds
    the GIL and so freezes the reflex and the silence monitor with it) with
    near readings.  The near reading stops the motor through its reflex."""
    device = PtyDevice(tmp_path / "ttyARDUINO")
    pins = tmp_path / "pins.json"
    daemon = start_daemon(f"""
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: front, driver: serial, port: {device.path}, protocol: line,
     pattern: '{NESTED}', max_age: 5}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18}}
reflexes:
  - {{name: proximity_safeguard, sensor: front, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: front, above: 15, actuator: movement, command: move}}
""")
    stream = watch(daemon.url)
    try:
        device.write(b"D,80\n")
        stream.wait_state("MOVING", timeout=20)
        assert pin(pins, "GPIO17") == 1.0
        start = len(stream.events)
        garbage = b"D," + b"1" * 40 + b"x\n"
        for _ in range(5):
            device.write(garbage * 3 + b"D,5\n" + garbage * 3)
        stopped = stream.wait_state("STOPPED", after=start, timeout=20)
        reflexes = [
            e["data"]["reflex_name"] for e in stream.events[start:] if e["type"] == "reflex"
        ]
        assert reflexes[:1] == ["proximity_safeguard"], reflexes  # the reading, not silence
        assert stopped["data"]["actuator_name"] == "movement"
        wait_for(lambda: pin(pins, "GPIO17") == 0.0, 20, "the forward pin to drop")
        readings = {e["data"]["value"] for e in stream.of_type("sensor")}
        assert readings <= {80.0, 5.0}, readings  # garbage lines are not readings
    finally:
        device.close()
