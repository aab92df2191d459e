"""Serial ports as the config names them: one device under two names is one
port, a path that is not a serial port is refused, and a port the user may
not open says which group to join, at --check and at run time."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anse_hw.drivers.serial_sensor import SerialSensor
from tests.conftest import ROOT, Recorder, run_cli, write_config
from tests.serialdev import PtyDevice

HINT = "add yourself to the dialout group (sudo usermod -aG dialout $USER, then log in again)"


def sensors(*lines: str) -> str:
    return "sensors:\n" + "".join(f"  - {line}\n" for line in lines)


def test_one_device_under_two_names_is_one_port_at_check(tmp_path):
    device = PtyDevice(tmp_path / "serial0")  # /dev/serial0 -> /dev/ttyAMA0 on a Pi
    try:
        text = sensors(
            f"{{name: front, driver: serial, port: {device.path}, protocol: tfmini}}",
            f"{{name: rear, driver: serial, port: {device.tty}, protocol: tfmini}}",
        )
        result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
        assert result.returncode == 2, result.stdout
        assert (
            f"robot.yaml:3: sensors[1].port: is already used by sensor 'front' "
            f"(as {device.path}); only protocol: line sensors can share a port"
        ) in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        device.close()


def test_line_sensors_on_two_names_of_one_device_open_it_once(tmp_path):
    """Opened twice, the second open would fail (the port is exclusive) or
    the two readers would steal each other's bytes."""
    device = PtyDevice(tmp_path / "serial0")
    options = {"protocol": "line", "baudrate": None, "reconnect_max": 0.2}
    distance = SerialSensor(
        "front", 0.01, port=device.path, pattern=r"^D,(?P<cm>[0-9]+)$", **options
    )
    humidity = SerialSensor(
        "air", 0.01, port=device.tty, pattern=r"^H,(?P<value>[0-9]+)$", **options
    )
    near, air = Recorder(), Recorder()
    try:
        assert distance.port is humidity.port
        near.start(distance)
        air.start(humidity)
        device.write(b"D,42\nH,55\n")
        assert near.take(1)[0].value == 42.0
        assert air.take(1)[0].value == 55.0
    finally:
        distance.close()
        humidity.close()
        device.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_text("not a tty"), "is a regular file, not a serial port"),
        (lambda p: p.mkdir(), "is a directory, not a serial port"),
        (lambda p: os.mkfifo(p), "is a FIFO, not a serial port"),
    ],
    ids=["regular-file", "directory", "fifo"],
)
def test_a_path_that_is_not_a_serial_port_is_refused_at_check(tmp_path, make, reason):
    port = tmp_path / "ttyFAKE"
    make(port)
    text = sensors(f"{{name: front, driver: serial, port: {port}, protocol: tfmini}}")
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 2
    assert f"robot.yaml:2: sensors[0].port: {port} {reason}" in result.stderr
    assert "Traceback" not in result.stderr


# -- a port this user may not open ---------------------------------------------------


DROP_CAPABILITIES = ("setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--")


def without_privileges(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`anse-hw` with every capability dropped: root then obeys file modes
    like any user (without CAP_DAC_OVERRIDE it opens any port)."""
    return subprocess.run(
        [*DROP_CAPABILITIES, sys.executable, "-m", "anse_hw", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "STATE_DIRECTORY": str(cwd / "state")},
    )


@pytest.fixture
def dialout_port():
    """A pty in group dialout, mode 0660, like /dev/ttyAMA0, owned by
    another user, so that a process that is neither may not open it."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to drop capabilities")
    try:
        gid = grp.getgrnam("dialout").gr_gid
    except KeyError:
        pytest.skip("no dialout group here")
    device = PtyDevice()
    os.chown(device.tty, pwd.getpwnam("nobody").pw_uid, gid)
    os.chmod(device.tty, 0o660)
    yield device
    device.close()


def test_a_port_the_user_may_not_open_names_the_group_to_join(dialout_port, tmp_path):
    device = dialout_port
    text = sensors(f"{{name: front, driver: serial, port: {device.tty}, protocol: tfmini}}")
    config = write_config(tmp_path, text)

    checked = without_privileges(["--config", str(config), "--check"], tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "config OK" not in checked.stdout
    assert (
        f"robot.yaml:2: sensors[0].port: cannot open serial port {device.tty}: "
        f"permission denied; {HINT}"
    ) in checked.stderr

    started = without_privileges(["--config", str(config), "--port", "0"], tmp_path)
    assert started.returncode == 1, started.stdout + started.stderr
    errors = [x for x in started.stderr.splitlines() if " ERROR " in x]
    assert len(errors) == 1, started.stderr
    assert f"cannot open serial port {device.tty}: permission denied; {HINT}" in errors[0]
    assert "Errno" not in errors[0] and errors[0].count("ermission denied") == 1
    assert "Traceback" not in started.stderr
