"""`encoders:` and `stall:` on a drive: what a builder gets wrong is a
one-line config error naming the key."""

from __future__ import annotations

import pytest

from anse_hw import config as configuration
from anse_hw.errors import ConfigError
from tests.conftest import GPIO_BASE, run_cli, write_config


def drive(extra: str, motor: str = "") -> str:
    return f"""
sensors: [{{name: front, driver: sim}}]
actuators:
{GPIO_BASE}
{extra}
{motor}
"""


GPIO_ENCODERS = """    encoders:
      left: {a: 5, b: 6, counts_per_rev: 360}
      right: {a: 19, b: 26, counts_per_rev: 360}"""


def test_the_yaml_of_the_spec_parses_with_its_encoders_and_stall():
    config = configuration.parse(drive(GPIO_ENCODERS + "\n    stall: {after: 0.5}"))
    (base,) = config.actuators
    assert base.encoders["left"] == {"a": 5, "b": 6, "counts_per_rev": 360}
    assert base.stall == {"after": 0.5}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "    encoders: {left: {a: 5, b: 5, counts_per_rev: 20}, "
            "right: {a: 19, b: 26, counts_per_rev: 20}}",
            "encoders.left.b: GPIO5 is already used by base.encoders.left.a",
        ),
        (
            "    encoders: {left: {a: 5, b: 6, counts_per_rev: 20}, "
            "right: {a: 6, b: 26, counts_per_rev: 20}}",
            "encoders.right.a: GPIO6 is already used by base.encoders.left.b",
        ),
        (
            "    encoders: {left: {a: 5, b: 6, counts_per_rev: 0}, "
            "right: {a: 19, b: 26, counts_per_rev: 20}}",
            "counts_per_rev: must be a whole number from 1",
        ),
        (
            "    encoders: {port: /dev/ttyACM0, counts_per_rev: 20}",
            "or {port, baud, counts_per_rev}",
        ),
        (
            "    encoders: {port: /dev/ttyACM0, baud: 115200, counts_per_rev: 20, max_rps: 0}",
            "max_rps: must be a number from 0.1 to 100",
        ),
        (
            GPIO_ENCODERS + "\n    stall: {after: 30}",
            "after: must be from 0.1 to 10 seconds, got 30",
        ),
        ("    stall: {after: 0.5}", "stall: needs encoders"),
        (
            "    encoders: {left: {a: 17, b: 6, counts_per_rev: 20}, "
            "right: {a: 19, b: 26, counts_per_rev: 20}}",
            "GPIO17 is already used by base.left.forward",
        ),
    ],
)
def test_a_wrong_encoders_or_stall_is_a_config_error(extra, message):
    with pytest.raises(ConfigError) as error:
        configuration.parse(drive(extra))
    assert message in str(error.value)
    assert "\n" not in str(error.value).strip(), "one problem, one line"


def test_a_sim_jam_needs_encoders():
    text = """
sensors: [{name: front, driver: sim}]
actuators: [{name: base, type: drive, driver: sim, jam_after: 2}]
"""
    with pytest.raises(ConfigError, match="jam_after: needs encoders"):
        configuration.parse(text)


def test_encoders_are_only_for_a_drive():
    motor = (
        "  - {name: m, driver: sim, encoders: {port: /dev/ttyACM0, baud: 9600, counts_per_rev: 1}}"
    )
    with pytest.raises(ConfigError, match="encoders: is for a drive"):
        configuration.parse(drive("", motor))


def test_check_names_a_missing_encoder_port_and_the_daemon_will_not_start(tmp_path):
    serial = (
        "    encoders: {port: " + str(tmp_path / "ttyACM9") + ", baud: 115200, counts_per_rev: 20}"
    )
    path = write_config(tmp_path, "gpio: {pin_factory: mock}\n" + drive(serial))
    check = run_cli("--config", str(path), "--check")
    assert check.returncode == 2
    assert f"encoders.port: serial port {tmp_path / 'ttyACM9'} does not exist" in check.stderr
    run = run_cli("--config", str(path), "--port", "0")
    assert run.returncode == 1
    assert f"cannot open encoder port {tmp_path / 'ttyACM9'}" in run.stderr
    assert "Traceback" not in run.stderr
