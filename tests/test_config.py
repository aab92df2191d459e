"""Bad configuration gets a clear message and exit 2 — through the real CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from anse_hw import config
from tests.conftest import EXAMPLES, fast_sim_config, run_cli, write_config

GOOD = """\
sensors:
  - name: front
    driver: sim
    interval: 0.1
actuators:
  - name: movement
    driver: sim
reflexes:
  - {name: stop_close, sensor: front, below: 10, actuator: movement, command: stop}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("    interval: 0.1", "    intervall: 0.1"),
            ["robot.yaml:4:", "sensors[0].intervall", "unknown key", "did you mean 'interval'"],
        ),
        (
            GOOD.replace("interval: 0.1", "interval: fast"),
            ["robot.yaml:4:", "sensors[0].interval", "expected a number", "'fast'"],
        ),
        (
            GOOD.replace("  - name: movement\n", "  - type: motor\n"),
            ["robot.yaml:6:", "actuators[0]", "missing required key 'name'"],
        ),
        (
            GOOD.replace("driver: sim\n    interval", "driver: [sim\n    interval"),
            ["robot.yaml:", "invalid YAML"],
        ),
        (
            GOOD.replace("sensor: front,", "sensor: frnt,"),
            [
                "robot.yaml:9:",
                "reflexes[0].sensor",
                "no sensor named 'frnt'",
                "did you mean 'front'",
            ],
        ),
        (
            GOOD.replace("below: 10", "below: 10, above: 20"),
            ["reflexes[0]", "exactly one of 'below' or 'above'"],
        ),
        (GOOD + "servr: {port: 9000}\n", ["robot.yaml:10:", "servr", "did you mean 'server'"]),
        (
            GOOD.replace("    driver: sim\n    interval", "    driver: sonar\n    interval"),
            ["sensors[0].driver", "must be one of sim, hcsr04, serial"],
        ),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "missing-required",
        "yaml-syntax",
        "unknown-sensor",
        "both-thresholds",
        "unknown-top-level",
        "unknown-driver",
    ],
)
def test_bad_config_exits_2_naming_the_problem(tmp_path, text, expected):
    path = write_config(tmp_path, text)
    for args in (["--config", str(path), "--check"], ["--config", str(path)]):
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        for fragment in expected:
            assert fragment in result.stderr, (fragment, result.stderr)
        assert "Traceback" not in result.stderr


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("interval: 0.1", "interval: -1").replace("sensor: front,", "sensor: x,")
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 2
    assert "must be from 0.005 to 60 seconds" in result.stderr
    assert "no sensor named 'x'" in result.stderr


def test_a_pin_used_twice_is_caught_at_check(tmp_path):
    text = """\
gpio: {pin_factory: mock}
sensors:
  - {name: front, driver: hcsr04, trigger: 23, echo: 24}
actuators:
  - {name: movement, driver: gpio, forward: 17, backward: 24}
"""
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 2
    assert "actuators[0].backward" in result.stderr
    assert "GPIO24 is already used by front.echo" in result.stderr


def test_a_missing_serial_port_is_caught_at_check(tmp_path):
    text = """\
sensors:
  - {name: lidar, driver: serial, port: /dev/ttyNOPE0, protocol: tfmini}
"""
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 2
    assert "serial port /dev/ttyNOPE0 does not exist" in result.stderr


def test_missing_config_file_and_no_config(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: cannot be read (No such file or directory)" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "anse_hw"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "--sim" in result.stderr


def test_check_prints_the_resolved_setup(tmp_path):
    result = run_cli("--config", str(write_config(tmp_path, GOOD)), "--check")
    assert result.returncode == 0, result.stderr
    assert "front: distance via sim every 0.1s, stale after 0.5s" in result.stdout
    assert "stop_close: front distance < 10cm -> stop movement" in result.stdout


def test_sim_yaml_is_exactly_the_builtin_defaults():
    from_file = config.load(EXAMPLES / "sim.yaml")
    builtin = config.sim_defaults()
    assert from_file.sensors == builtin.sensors
    assert from_file.actuators == builtin.actuators
    assert from_file.reflexes == builtin.reflexes
    assert from_file.server == builtin.server


@pytest.mark.parametrize("name", ["sim.yaml", "pi-hcsr04.yaml", "pi-serial.yaml", "pi-robot.yaml"])
def test_example_configs_are_valid(name):
    result = run_cli("--config", str(EXAMPLES / name), "--sim", "--check")
    assert result.returncode == 0, result.stderr
    parsed = config.load(EXAMPLES / name)  # also valid without --sim
    assert parsed.reflexes and parsed.sensors


def test_sim_flag_swaps_drivers_but_keeps_the_rest():
    real = config.load(EXAMPLES / "pi-hcsr04.yaml")
    sim = config.load(EXAMPLES / "pi-hcsr04.yaml", sim=True)
    assert [s.driver for s in sim.sensors] == ["sim"]
    assert [a.driver for a in sim.actuators] == ["sim"]
    assert sim.reflexes == real.reflexes
    assert sim.sensors[0].interval == real.sensors[0].interval
    assert sim.sensors[0].max_age == real.sensors[0].max_age


def test_default_max_age_is_half_a_second_or_three_intervals():
    fast = config.parse("sensors: [{name: a, driver: sim, interval: 0.05}]")
    slow = config.parse("sensors: [{name: a, driver: sim, interval: 1.5}]")
    assert fast.sensors[0].max_age == 0.5
    assert slow.sensors[0].max_age == 4.5


def test_an_unavailable_pin_factory_is_a_clear_error():
    """This machine has no lgpio: the Pi example must say so, not crash."""
    result = run_cli(
        "--config",
        str(EXAMPLES / "pi-hcsr04.yaml"),
        "--port",
        "0",
    )
    assert result.returncode == 1
    assert "gpio.pin_factory lgpio is not usable here" in result.stderr
    assert "python3-lgpio" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_a_clear_error(start_daemon, tmp_path):
    port = start_daemon(fast_sim_config(0)).port
    second = run_cli("--config", str(write_config(tmp_path, fast_sim_config(port), "b.yaml")))
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
    assert "Traceback" not in second.stderr


def test_an_empty_sensor_list_is_an_error(tmp_path):
    result = run_cli("--config", str(write_config(tmp_path, "sensors: []\n")), "--check")
    assert result.returncode == 2
    assert "robot.yaml:1: sensors: needs at least one sensor" in result.stderr


def test_errors_point_at_the_right_item_after_an_invalid_one(tmp_path):
    text = """\
sensors:
  - {name: bad, driver: nope}
  - {name: front, driver: sim}
  - {name: front, driver: sim}
"""
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 2
    assert "robot.yaml:4: sensors[2].name: 'front' is used twice" in result.stderr
