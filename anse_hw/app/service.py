"""`anse-hw install-service` and `anse-hw uninstall-service`.

Installing by hand took ten sudo steps, each easy to get subtly wrong (a venv
the service cannot see, a config the service user cannot read, a unit that
names another Python).  This does them in order, says what each did, and can
run again: a second run with the same inputs changes nothing.

It is all or nothing.  Everything that can be known before a change is
checked first: the config as `--check` checks it (the pin factory it would
load, the ports and files it names), the Python, and every path it will write
(a symbolic link planted at `/etc/anse-hw` would have it write as root
wherever the link points).  Each change is then recorded with its undo; when
a later step fails (useradd, systemctl, a full disk), the changes of this run
are undone in reverse order, and it says so.

`--root DIR` stages the files under DIR instead of / and skips the steps that
change the running system (the user, systemctl, and the device checks, which
are about the machine the service will run on): for packagers, and for the
tests, which cannot run systemd as PID 1.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from anse_hw import __version__, files
from anse_hw.config import parse, read
from anse_hw.errors import OK, ConfigError, Failure
from anse_hw.statefile import write_bytes

UNIT = "anse-hw.service"
TEMPLATE = Path(__file__).resolve().parent.parent / "unit" / UNIT
#: The Python the shipped unit names; replaced by the one running this command.
TEMPLATE_PYTHON = "/opt/anse-hw/bin/python"
USER = "anse-hw"
#: Groups that own /dev/gpiochip*, /dev/gpiomem and the serial ports on Raspberry Pi OS.
DEVICE_GROUPS = ("gpio", "dialout")
#: What the unit's ProtectHome=yes hides from the service.
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))


def unit_text(python: str) -> str:
    return TEMPLATE.read_text().replace(TEMPLATE_PYTHON, python)


def install_source() -> str:
    """What to give pip to install this anse-hw into /opt/anse-hw: the
    checkout it runs from, or else the wheel it was installed from (anse-hw
    is not on PyPI)."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return str(checkout)
    return f"anse_hw-{__version__}-py3-none-any.whl   # the wheel you installed, or a checkout"


def python_problem(python: str) -> str | None:
    """Why the service could not run this interpreter, or None."""
    path = Path(python).absolute()
    for hidden in HIDDEN:
        if path.is_relative_to(hidden):
            return (
                f"{python} is under {hidden}, which the service cannot see (ProtectHome=yes). "
                "Install anse-hw where it can, then run this command from there:\n"
                "  sudo python3 -m venv --system-site-packages /opt/anse-hw\n"
                f"  sudo /opt/anse-hw/bin/pip install {install_source()}\n"
                "  sudo /opt/anse-hw/bin/anse-hw install-service --config robot.yaml"
            )
    return None


def os_problem(exc: OSError) -> str:
    """An OSError as one line that names the file when there is one."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot change {exc.filename}: {reason}" if exc.filename else f"cannot change: {reason}"


class Installer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.live = root == Path("/")
        self.unit_path = root / "etc/systemd/system" / UNIT
        self.config_dir = root / "etc/anse-hw"
        self.config_path = self.config_dir / "config.yaml"
        self.state_dir = root / "var/lib/anse-hw"
        #: What this run changed, each with how to take it back, in order.
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    def need_root(self) -> None:
        if self.live and os.geteuid() != 0:
            raise ConfigError(["this changes the system: run it with sudo (or stage with --root)"])

    # -- checks, all before the first change -------------------------------------

    def links_problem(self, *paths: Path) -> str | None:
        """A symbolic link on the way to a path this writes or removes, below
        the root: writing through it as root would land where it points."""
        for path in paths:
            probe = path
            while probe != self.root and probe.is_relative_to(self.root):
                if probe.is_symlink():
                    return (
                        f"{probe} is a symbolic link (to {os.readlink(probe)}); anse-hw does "
                        "not write or remove through links: remove it, then run this again"
                    )
                probe = probe.parent
        return None

    def read_config(self, config_file: str) -> bytes:
        """The bytes to install, checked as `--check` checks them: read once,
        so what is validated is what is copied (strict UTF-8 gives back the
        very bytes of the file)."""
        text = read(config_file)
        config = parse(text, str(Path(config_file)))
        if self.live:
            from anse_hw.app.cli import check_devices  # the pin factory, ports and files it names

            problems = check_devices(config)
            if problems:
                raise ConfigError(problems)
        else:
            self.say("- staged, so the devices are not checked (run --check on the robot)")
        return text.encode("utf-8")

    # -- changes, each with its undo ------------------------------------------

    def changed(self, what: str, undo: Callable[[], None]) -> None:
        self._undo.append((what, undo))

    def roll_back(self) -> list[str]:
        """Undo this run's changes, newest first; what could not be undone."""
        stuck = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except (OSError, Failure) as exc:
                reason = os_problem(exc) if isinstance(exc, OSError) else str(exc)
                stuck.append(f"{what} ({reason})")
                self.say(f"! could not undo: {what} ({reason})")
            else:
                self.say(f"↩ undid: {what}")
        return stuck

    def write(self, path: Path, data: bytes, mode: int, group: str | None = None) -> bool:
        """Write `data` unless the file already holds it; True when it changed.
        The file it replaces is kept (a hard link) until the run succeeds."""
        if _holds(path, data):
            self.say(f"= {path} is up to date")
            return False
        created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        keep = path.with_name(f".{path.name}.before-install")
        if keep.exists() or keep.is_symlink():  # left by a run that was killed
            keep.unlink()
        if path.exists():
            os.link(path, keep)
        try:
            write_bytes(path, data, mode, group if self.live else None)
        except BaseException:
            # The write is atomic: the file is as it was; only what was made for it goes.
            with contextlib.suppress(OSError):
                keep.unlink(missing_ok=True)
                _remove_empty(created)
            raise
        self.changed(f"wrote {path}", lambda: self._restore(path, keep, created))
        self.say(f"✓ wrote {path}")
        return True

    def _restore(self, path: Path, keep: Path, created: list[Path]) -> None:
        """Put back what `write` replaced: the old file, or no file and none
        of the directories it made."""
        if keep.exists():
            os.replace(keep, path)
        else:
            path.unlink(missing_ok=True)
        _remove_empty(created)

    def forget_kept(self) -> None:
        """The run succeeded: the files it replaced are not needed any more."""
        for path in (self.config_path, self.unit_path):
            path.with_name(f".{path.name}.before-install").unlink(missing_ok=True)

    def run(self, *command: str, undo: tuple[str, ...] = ()) -> None:
        """Run a command of the live system (staged: only say it); `undo`
        takes it back if a later step fails."""
        if not self.live:
            self.say(f"- staged, so not run: {' '.join(command)}")
            return
        self.call(*command)
        self.say(f"✓ {' '.join(command)}")
        if undo:
            self.changed(" ".join(command), lambda: self.call(*undo))

    @staticmethod
    def call(*command: str) -> None:
        """A command that must succeed; its failure is a runtime one (exit 1)."""
        try:
            subprocess.run(command, check=True)
        except FileNotFoundError:
            raise Failure(f"{command[0]} is not installed: is this a systemd machine?") from None
        except subprocess.CalledProcessError as exc:
            raise Failure(f"`{' '.join(command)}` failed (exit {exc.returncode})") from None

    @staticmethod
    def succeeds(*command: str) -> bool:
        """A question to systemctl (is-enabled, is-active) as a yes or no."""
        try:
            return subprocess.run(command, capture_output=True).returncode == 0
        except OSError:
            return False

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
                undo=("userdel", USER),
            )
        present = [g for g in DEVICE_GROUPS if _exists(grp.getgrnam, g)]
        for group in present:
            if USER not in grp.getgrnam(group).gr_mem and _exists(pwd.getpwnam, USER):
                self.run(
                    "usermod",
                    "--append",
                    "--groups",
                    group,
                    USER,
                    undo=("gpasswd", "--delete", USER, group),
                )
        absent = sorted(set(DEVICE_GROUPS) - set(present))
        if absent:
            self.say(f"! no group {', '.join(absent)} here: not a Raspberry Pi OS image?")

    # -- the two verbs --------------------------------------------------------

    def install(self, config_file: str, start: bool) -> int:
        self.need_root()
        problem = python_problem(sys.executable)
        if problem:
            raise ConfigError([problem])
        data = self.read_config(config_file)  # a config that would not start is refused here
        problem = self.links_problem(self.config_path, self.unit_path)
        if problem:
            raise Failure(problem)
        try:
            self._install(data, start)
        except (OSError, Failure) as exc:
            reason = os_problem(exc) if isinstance(exc, OSError) else str(exc)
            if not self._undo:
                raise Failure(f"{reason}; nothing was changed") from None
            stuck = self.roll_back()
            if stuck:
                raise Failure(f"{reason}; could not undo: {'; '.join(stuck)}") from None
            raise Failure(f"{reason}; every change of this run was undone") from None
        self.forget_kept()
        return OK

    def _install(self, data: bytes, start: bool) -> None:
        self.ensure_user()
        changed = self.write(self.config_path, data, 0o640, USER)
        unit_changed = self.write(self.unit_path, unit_text(sys.executable).encode(), 0o644)
        if unit_changed and self.live:
            # The unit's undo must reach systemd too: reload after restoring it.
            self.changed("systemctl daemon-reload", lambda: self.call("systemctl", "daemon-reload"))
        self.run("systemctl", "daemon-reload")
        if self.live and self.succeeds("systemctl", "is-enabled", "--quiet", UNIT):
            self.say(f"= {UNIT} is enabled")
        else:
            self.run("systemctl", "enable", UNIT, undo=("systemctl", "disable", UNIT))
        if start:
            if self.live:
                self.undo_start()
            # restart picks up a new config; on an unchanged install it is the
            # same as start (a running service keeps running).
            self.run("systemctl", "restart" if changed or unit_changed else "start", UNIT)
            self.say("Watch it: journalctl -u anse-hw -f  (errors: journalctl -u anse-hw -p err)")

    def undo_start(self) -> None:
        """Registered before the (re)start, which may itself fail: a service
        that ran before runs its restored setup again, once everything else
        is undone; one that did not is stopped, before anything else is."""
        if self.succeeds("systemctl", "is-active", "--quiet", UNIT):
            back = ("systemctl", "restart", UNIT)
            self._undo.insert(
                0, (f"{' '.join(back)} (the previous setup)", lambda: self.call(*back))
            )
        else:
            self.changed(f"started {UNIT}", lambda: self.call("systemctl", "stop", UNIT))

    def uninstall(self, purge: bool) -> int:
        """Stops the service first (its ExecStopPost drives the pins safe)."""
        self.need_root()
        removed = (self.config_dir, self.state_dir) if purge else ()
        problem = self.links_problem(self.unit_path, *removed)
        if problem:
            raise Failure(problem)
        try:
            self._uninstall(purge)
        except OSError as exc:
            raise Failure(os_problem(exc)) from None
        return OK

    def _uninstall(self, purge: bool) -> None:
        if self.unit_path.exists():
            self.run("systemctl", "disable", "--now", UNIT)
            self.unit_path.unlink()
            self.say(f"✓ removed {self.unit_path}")
            self.run("systemctl", "daemon-reload")
        else:
            self.say(f"= {self.unit_path} is not there")
        if not purge:
            self.say(f"kept {self.config_dir} and {self.state_dir} (--purge removes them)")
            return
        for directory in (self.config_dir, self.state_dir):
            if directory.exists():
                shutil.rmtree(directory)
                self.say(f"✓ removed {directory}")
        if self.live and _exists(pwd.getpwnam, USER):
            self.run("userdel", USER)


def _remove_empty(directories: list[Path]) -> None:
    """rmdir each of `directories` (deepest first) that is still there."""
    for directory in directories:
        if directory.is_dir():
            directory.rmdir()


def _holds(path: Path, data: bytes) -> bool:
    """The regular file at `path` holds exactly `data` (read through files.py,
    at most one byte more than `data`: a huge file is simply different)."""
    try:
        return files.read_bytes(path, len(data)) == data
    except files.FileProblem:
        return False


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    """pwd.getpwnam / grp.getgrnam as a yes or no."""
    try:
        lookup(name)
    except KeyError:
        return False
    return True
