"""`anse-hw install-service` and `anse-hw uninstall-service`.

Installing by hand took ten sudo steps, each easy to get subtly wrong (a venv
the service cannot see, a config the service user cannot read, a unit that
names another Python).  This does them in order, says what each did, and can
run again: a second run with the same inputs changes nothing.

`--root DIR` stages the files under DIR instead of / and skips the steps that
change the running system (the user, systemctl): for packagers, and for the
tests, which cannot run systemd as PID 1.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from anse_hw.config import ConfigError, load
from anse_hw.statefile import write_bytes

UNIT = "anse-hw.service"
TEMPLATE = Path(__file__).resolve().parent / "unit" / UNIT
#: The Python the shipped unit names; replaced by the one running this command.
TEMPLATE_PYTHON = "/opt/anse-hw/bin/python"
USER = "anse-hw"
#: Groups that own /dev/gpiochip*, /dev/gpiomem and the serial ports on Raspberry Pi OS.
DEVICE_GROUPS = ("gpio", "dialout")
#: What the unit's ProtectHome=yes hides from the service.
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))


def unit_text(python: str) -> str:
    return TEMPLATE.read_text().replace(TEMPLATE_PYTHON, python)


def python_problem(python: str) -> str | None:
    """Why the service could not run this interpreter, or None."""
    path = Path(python).absolute()
    for hidden in HIDDEN:
        if path.is_relative_to(hidden):
            return (
                f"{python} is under {hidden}, which the service cannot see (ProtectHome=yes). "
                "Install anse-hw where it can, then run this command from there:\n"
                "  sudo python3 -m venv --system-site-packages /opt/anse-hw\n"
                "  sudo /opt/anse-hw/bin/pip install anse-hw\n"
                "  sudo /opt/anse-hw/bin/anse-hw install-service --config robot.yaml"
            )
    return None


class Installer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.live = root == Path("/")
        self.unit_path = root / "etc/systemd/system" / UNIT
        self.config_dir = root / "etc/anse-hw"
        self.state_dir = root / "var/lib/anse-hw"

    def say(self, text: str) -> None:
        print(text, flush=True)

    def need_root(self) -> None:
        if self.live and os.geteuid() != 0:
            raise ConfigError(["this changes the system: run it with sudo (or stage with --root)"])

    def write(self, path: Path, data: bytes, mode: int, group: str | None = None) -> bool:
        """Write `data` unless the file already holds it; True when it changed."""
        if path.is_file() and path.read_bytes() == data:
            self.say(f"= {path} is up to date")
            return False
        write_bytes(path, data, mode, group if self.live else None)
        self.say(f"✓ wrote {path}")
        return True

    def run(self, *command: str) -> None:
        if not self.live:
            self.say(f"- staged, so not run: {' '.join(command)}")
            return
        try:
            subprocess.run(command, check=True)
        except FileNotFoundError as exc:
            raise ConfigError(
                [f"{command[0]} is not installed: is this a systemd machine?"]
            ) from exc
        except subprocess.CalledProcessError as exc:
            raise ConfigError([f"`{' '.join(command)}` failed (exit {exc.returncode})"]) from exc
        self.say(f"✓ {' '.join(command)}")

    def ensure_user(self) -> None:
        if not self.live:
            self.say(f"- staged, so the {USER} user is not created")
            return
        if _exists(pwd.getpwnam, USER):
            self.say(f"= user {USER} exists")
        else:
            self.run(
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            )
        present = [g for g in DEVICE_GROUPS if _exists(grp.getgrnam, g)]
        missing = [g for g in present if USER not in grp.getgrnam(g).gr_mem]
        if missing:
            self.run("usermod", "--append", "--groups", ",".join(missing), USER)
        absent = sorted(set(DEVICE_GROUPS) - set(present))
        if absent:
            self.say(f"! no group {', '.join(absent)} here: not a Raspberry Pi OS image?")

    def install(self, config_file: str, start: bool) -> int:
        self.need_root()
        problem = python_problem(sys.executable)
        if problem:
            raise ConfigError([problem])
        source = Path(config_file)
        load(source)  # a config that would not start is refused here, with its line
        self.ensure_user()
        changed = self.write(self.config_dir / "config.yaml", source.read_bytes(), 0o640, USER)
        changed |= self.write(self.unit_path, unit_text(sys.executable).encode(), 0o644)
        self.run("systemctl", "daemon-reload")
        self.run("systemctl", "enable", UNIT)
        if start:
            # restart picks up a new config; on an unchanged install it is the
            # same as start (a running service keeps running).
            self.run("systemctl", "restart" if changed else "start", UNIT)
            self.say("Watch it: journalctl -u anse-hw -f  (errors: journalctl -u anse-hw -p err)")
        return 0

    def uninstall(self, purge: bool) -> int:
        """Stops the service first (its ExecStopPost drives the pins safe)."""
        self.need_root()
        if self.unit_path.exists():
            self.run("systemctl", "disable", "--now", UNIT)
            self.unit_path.unlink()
            self.say(f"✓ removed {self.unit_path}")
            self.run("systemctl", "daemon-reload")
        else:
            self.say(f"= {self.unit_path} is not there")
        if not purge:
            self.say(f"kept {self.config_dir} and {self.state_dir} (--purge removes them)")
            return 0
        for directory in (self.config_dir, self.state_dir):
            if directory.exists():
                shutil.rmtree(directory)
                self.say(f"✓ removed {directory}")
        if self.live and _exists(pwd.getpwnam, USER):
            self.run("userdel", USER)
        return 0


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    """pwd.getpwnam / grp.getgrnam as a yes or no."""
    try:
        lookup(name)
    except KeyError:
        return False
    return True
