"""Files a config names (the MQTT password, the CPU temperature file, a sim
trace, the mock pin files) are opened through files.py: a FIFO, /dev/zero, a
directory, non-UTF-8 text or a missing directory is one line naming the key
and the file, at --check (exit 2) and at start (exit 1), never a hang, a
traceback or memory read without end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import engine_for, run_cli, wait_for, write_config

SIM = "sensors:\n  - {name: a, driver: sim}\n"


def hostile(tmp_path: Path, kind: str) -> Path:
    """A file of `kind` where a small text file was expected."""
    path = tmp_path / f"hostile-{kind}"
    if kind == "fifo":  # no writer: a plain open() blocks for ever
        os.mkfifo(path)
    elif kind == "dev-zero":  # endless: a plain read() fills the memory
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"12\n\xff\xfe34\n")
    elif kind == "huge":
        path.write_bytes(b"1\n" * (2 * 1024 * 1024))
    elif kind == "missing":
        pass
    return path


REASONS = {
    "fifo": "is a FIFO, not a regular file",
    "dev-zero": "is a character device, not a regular file",
    "directory": "is a directory, not a regular file",
    "not-utf8": "is not UTF-8 text (byte 0xff at offset 3)",
    "huge": "is larger than",
    "missing": "No such file or directory",
}


def one_line(result, code: int, *fragments: str) -> str:
    """The run ended with `code` and said so in exactly one error line."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [x for x in result.stderr.splitlines() if " ERROR " in x]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "not-utf8", "huge", "missing"])
def test_mqtt_password_file(tmp_path, kind):
    path = hostile(tmp_path, kind)
    text = f"mqtt: {{username: robot1, password_file: {path}}}\n" + SIM
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    one_line(result, 2, "robot.yaml:1: mqtt.password_file:", str(path), REASONS[kind])


def test_an_empty_or_multi_line_password_file_is_refused(tmp_path):
    for content, reason in ((b"\n", "is empty"), (b"a\nb\n", "holds more than one line")):
        path = tmp_path / "password"
        path.write_bytes(content)
        text = f"mqtt: {{username: robot1, password_file: {path}}}\n" + SIM
        result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
        one_line(result, 2, "mqtt.password_file:", reason)


def cpu_sensor(path: Path) -> str:
    return f"sensors:\n  - {{name: cpu, type: temperature, driver: cpu, path: {path}}}\n"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_cpu_path_that_is_not_a_regular_file(tmp_path, kind):
    path = hostile(tmp_path, kind)
    config = write_config(tmp_path, cpu_sensor(path))
    checked = run_cli("--config", str(config), "--check")
    one_line(checked, 2, "robot.yaml:2: sensors[0].path:", str(path), REASONS[kind])
    started = run_cli("--config", str(config), "--port", "0")
    one_line(started, 1, "cpu:", str(path), REASONS[kind])


def test_cpu_path_turned_into_dev_zero_at_run_time_is_a_fault_not_a_read(tmp_path):
    """Read at most a page: /dev/zero behind the path used to grow the
    daemon by 330 MB/s.  Now the sensor faults, and its guard stops the motor."""
    zone = tmp_path / "temp"
    zone.write_text("45000\n")
    engine, published = engine_for(f"""
sensors:
  - {{name: cpu, type: temperature, driver: cpu, path: {zone}, interval: 0.05, max_age: 5}}
actuators: [{{name: m, driver: sim}}]
reflexes:
  - {{name: hot, sensor: cpu, above: 80, actuator: m, command: stop}}
  - {{name: cool, sensor: cpu, below: 60, actuator: m, command: move}}
""")
    engine.start()
    try:
        wait_for(lambda: engine.actuators["m"].state == "MOVING", 20, "the motor to move")
        zone.unlink()
        zone.symlink_to("/dev/zero")

        def fault():
            return next(
                (
                    e
                    for e in list(published)
                    if e["type"] == "reflex" and e["data"]["reflex_name"] == "sensor_fault"
                ),
                None,
            )

        event = wait_for(fault, 20, "the sensor fault")
        assert "is a character device, not a regular file" in event["data"]["condition"]
        wait_for(lambda: engine.actuators["m"].state == "STOPPED", 20, "the motor to stop")
    finally:
        engine.close()


def test_a_1wire_slave_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "28-0316a27936ff" / "w1_slave").mkdir(parents=True)
    text = f"sensors:\n  - {{name: t, type: temperature, driver: ds18b20, w1_root: {tmp_path}}}\n"
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    one_line(result, 2, "robot.yaml:2: sensors[0].device:", "is a directory, not a regular file")


def trace_sensor(path: Path) -> str:
    return f"sensors:\n  - {{name: a, driver: sim, profile: trace, trace: {path}}}\n"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "not-utf8", "huge", "missing"])
def test_sim_trace_file(tmp_path, kind):
    path = hostile(tmp_path, kind)
    config = write_config(tmp_path, trace_sensor(path))
    checked = run_cli("--config", str(config), "--check")
    where = f"{path}:2: " if kind == "not-utf8" else str(path)  # the line of the bad byte
    one_line(checked, 2, "robot.yaml:2: sensors[0].trace:", where, REASONS[kind])
    started = run_cli("--config", str(config), "--port", "0")
    one_line(started, 1, "a: trace:", where, REASONS[kind])


@pytest.mark.parametrize(
    ("content", "reason"),
    [("12\nfast\n", ":2: expected a number, got 'fast'"), ("1\ninf\n", ":2: expected a number")],
    ids=["word", "infinity"],
)
def test_sim_trace_values_are_numbers(tmp_path, content, reason):
    path = tmp_path / "trace.txt"
    path.write_text(content)
    result = run_cli("--config", str(write_config(tmp_path, trace_sensor(path))), "--check")
    one_line(result, 2, "sensors[0].trace:", f"{path}{reason}")


MOCK = SIM + "actuators:\n  - {name: m, driver: gpio, forward: 17, backward: 18}\n"


@pytest.mark.parametrize("key", ["mock_state_file", "mock_input_file"])
@pytest.mark.parametrize("kind", ["missing-directory", "fifo", "dev-zero", "directory"])
def test_mock_pin_files(tmp_path, key, kind):
    if kind == "missing-directory":
        path, reason = tmp_path / "nowhere" / "pins.json", f"directory {tmp_path}/nowhere does not"
    else:
        path, reason = hostile(tmp_path, kind), REASONS[kind]
    config = write_config(tmp_path, f"gpio: {{pin_factory: mock, {key}: {path}}}\n" + MOCK)
    checked = run_cli("--config", str(config), "--check")
    one_line(checked, 2, f"robot.yaml:1: gpio.{key}:", str(path), reason)
    started = run_cli("--config", str(config), "--port", "0")
    one_line(started, 1, f"gpio.{key}:", reason)
