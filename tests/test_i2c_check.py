"""`anse-hw --check` on I2C devices (issue 24): each configured address is
probed on the bus and its chip identified, so a wrong address, another chip
at the address, or two devices claiming one address is a config error with
the file and line of that `address:` (exit 2), before anything is driven."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

FAKE = {
    "0x41": {"device": "ina219", "bus_voltage": 12.0, "current": 0.4, "shunt_ohms": 0.1},
    "0x29": {"device": "vl53l1x", "distance_cm": 80},
    "0x76": {"device": "bme280"},
}


def check(tmp_path: Path, *sensors: str) -> tuple[int, str, Path]:
    """`--check` on a config with these sensor lines, the fake bus holding FAKE."""
    fake = tmp_path / "i2c.json"
    fake.write_text(json.dumps(FAKE))
    config = tmp_path / "robot.yaml"
    lines = "\n".join(f"  - {{{s}}}" for s in sensors)
    config.write_text(f"i2c: {{fake_file: {fake}}}\nsensors:\n{lines}\n")
    done = run_cli("--config", str(config), "--check")
    return done.returncode, done.stdout + done.stderr, config


BATTERY = "name: battery, type: voltage, driver: ina219, address: 0x41, shunt_ohms: 0.1"
CURRENT = "name: motor_current, type: current, driver: ina219, address: 0x41, shunt_ohms: 0.1"


def test_the_devices_where_they_are_configured_pass(tmp_path):
    code, out, _ = check(
        tmp_path,
        BATTERY,
        CURRENT,
        "name: tof, type: distance, driver: vl53l1x, address: 0x29",
        "name: air, type: pressure, driver: bme280, address: 0x76",
    )
    assert code == 0, out
    assert "config OK" in out
    assert "battery: voltage via ina219" in out and "address=0x41" in out


def test_nothing_at_the_address_is_an_error_at_its_line(tmp_path):
    code, out, config = check(
        tmp_path, BATTERY, "name: air, type: pressure, driver: bme280, address: 0x77"
    )
    assert code == 2, out
    assert f"{config}:4: sensors[1].address: nothing answers at 0x77" in out
    assert "Traceback" not in out


def test_another_chip_at_the_address_is_an_error_at_its_line(tmp_path):
    code, out, config = check(
        tmp_path, "name: air, type: temperature, driver: bme280, address: 0x29"
    )
    assert code == 2, out
    assert f"{config}:3: sensors[0].address: the device at 0x29 has chip ID" in out
    assert "not the BME280's 0x60" in out


def test_two_devices_claiming_one_address_is_an_error_at_the_second(tmp_path):
    code, out, config = check(
        tmp_path, BATTERY, "name: tof, type: distance, driver: vl53l1x, address: 0x41"
    )
    assert code == 2, out
    assert f"{config}:4: sensors[1].address: 0x41 is already used by battery (ina219)" in out


def test_two_sensors_of_one_ina219_must_agree_on_its_shunt(tmp_path):
    code, out, config = check(tmp_path, BATTERY, CURRENT.replace("0.1", "0.01"))
    assert code == 2, out
    assert f"{config}:4: sensors[1].address: 0x41 is already used by battery with other" in out
