"""Every way the daemon process can end leaves the motor stopped (issue 19 item 1).

From a shell without systemd (no NOTIFY_SOCKET): a daemon on the mock pin
factory drives a motor (a sim sensor that reads "clear"), then dies in one of
many ways.  A signal a handler can catch: the pins are safe and released
before the process is gone, and the log names the signal.  A death no handler
sees (SIGKILL, a segfault): the guardian drives them safe within a second of
the process being gone.  A terminal that vanishes: SIGHUP stops it cleanly,
and writes to the dead terminal never hurt it.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from anse_hw.drivers.pins import read_pin_states
from tests.conftest import ROOT, collect, daemon_env, http_get, pin, wait_for
from tests.test_failsafe import NotifySocket

CONFIG = """
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: s, driver: sim, interval: 0.05, profile: constant, value: 80}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.6}}
reflexes:
  - {{name: stop, sensor: s, below: 10, actuator: movement, command: stop}}
  - {{name: go, sensor: s, above: 15, actuator: movement, command: move}}
"""

#: Signals a handler can catch whose default would end the process, and the
#: exit code each gives: 0 for the ways a user stops it (a closed terminal is
#: one), 1 for the rest.  Two real-time signals stand for their whole range.
CAUGHT = {
    "SIGHUP": 0,
    "SIGINT": 0,
    "SIGTERM": 0,
    "SIGQUIT": 1,
    "SIGTRAP": 1,
    "SIGABRT": 1,
    "SIGUSR1": 1,
    "SIGUSR2": 1,
    "SIGALRM": 1,
    "SIGSTKFLT": 1,
    "SIGXCPU": 1,
    "SIGVTALRM": 1,
    "SIGPROF": 1,
    "SIGIO": 1,
    "SIGPWR": 1,
    "SIGSYS": 1,
    "SIGRTMIN": 1,
    "SIGRTMAX": 1,
}
#: The issue asks for the pins safe within 1 s of the process being gone.
DEADLINE = 1.0
GUARDIAN = re.compile(r"Guardian \(pid (\d+)\)")


def moving(start_daemon, tmp_path: Path, env: dict | None = None):
    pins = tmp_path / "pins.json"
    daemon = start_daemon(CONFIG.format(pins=pins), env=env)
    wait_for(lambda: pin(pins, "GPIO17") == 0.6, what="the motor to move")
    return daemon, pins


def guardian_of(daemon) -> int:
    return int(wait_for(lambda: GUARDIAN.search(daemon.log()), what="the guardian").group(1))


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def released_and_safe(pins: Path) -> bool:
    states = read_pin_states(pins)
    return all(states[p] == {"function": "input", "state": 0.0} for p in ("GPIO17", "GPIO18"))


@pytest.mark.parametrize("name", CAUGHT)
def test_a_catchable_signal_stops_the_motor_and_releases_the_pins_before_exit(
    start_daemon, tmp_path, name
):
    daemon, pins = moving(start_daemon, tmp_path)
    guardian = guardian_of(daemon)
    assert daemon.signal(getattr(signal, name)) == CAUGHT[name]
    assert released_and_safe(pins), "safe and released before the process was gone"
    log = daemon.log()
    assert f"{name} received: stopping motors and shutting down" in log
    assert "pins released" in log and "Traceback" not in log
    wait_for(lambda: not alive(guardian), what="the guardian to leave")
    assert "guardian:" not in daemon.log(), "a clean stop: the guardian went quietly"


@pytest.mark.parametrize("name", ["SIGKILL", "SIGSEGV"])
def test_a_death_no_handler_sees_is_stopped_by_the_guardian(start_daemon, tmp_path, name):
    daemon, pins = moving(start_daemon, tmp_path)
    guardian = guardian_of(daemon)
    assert daemon.signal(getattr(signal, name)) == -getattr(signal, name)
    wait_for(lambda: pin(pins, "GPIO17") == 0.0, DEADLINE, "the guardian's stop", 0.002)
    wait_for(lambda: not alive(guardian), what="the guardian to finish")
    log = daemon.log()
    assert f"guardian: anse-hw (pid {daemon.proc.pid}) ended without stopping" in log
    assert "movement: STOPPED" in log and "Traceback" not in log
    assert pin(pins, "GPIO18") == 0.0


@pytest.mark.parametrize("name", ["SIGPIPE", "SIGXFSZ"])
def test_signals_python_ignores_end_nothing_and_stop_nothing(start_daemon, tmp_path, name):
    """Python ignores them so that the write fails instead (a vanished client,
    a recording at the file-size limit): the robot runs on, under control."""
    daemon, pins = moving(start_daemon, tmp_path)
    daemon.proc.send_signal(getattr(signal, name))
    # An answer after the signal was sent: it was delivered, and ignored.
    assert http_get(f"http://127.0.0.1:{daemon.port}/healthz")[0] == 200
    assert daemon.proc.poll() is None and pin(pins, "GPIO17") == 0.6
    assert daemon.signal(signal.SIGTERM) == 0 and released_and_safe(pins)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGKILL"])
def test_killing_the_guardian_stops_the_daemon_safely(start_daemon, tmp_path, name):
    daemon, pins = moving(start_daemon, tmp_path)
    os.kill(guardian_of(daemon), getattr(signal, name))
    assert daemon.proc.wait(timeout=15) == 1
    assert released_and_safe(pins)
    assert f"guardian gone (killed by {name}): stopping" in daemon.log()


def test_under_systemd_no_guardian_its_exec_stop_post_covers_a_kill(start_daemon, tmp_path):
    daemon, pins = moving(start_daemon, tmp_path, env={"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert "No guardian: under systemd" in daemon.log()
    assert not GUARDIAN.search(daemon.log())
    daemon.proc.kill()
    daemon.proc.wait()
    assert pin(pins, "GPIO17") == 0.6, "as on a Pi: driven until ExecStopPost's --safe-stop"


# -- a terminal that goes away -------------------------------------------------

#: Runs the daemon as the leader of a new session whose controlling terminal
#: is the pty on fds 0-2, as a shell in an SSH session would.
ON_A_TERMINAL = (
    "import os, sys; os.setsid(); os.close(os.open(os.ttyname(0), os.O_RDWR)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'anse_hw', *sys.argv[1:]])"
)


class Terminal:
    """A pty whose output is read (so the daemon never blocks on it) until hung up."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.output = b""
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # Never blocked in read() when hang_up closes the master: the kernel
        # would defer the close, and with it the hang-up, until that read returned.
        while not self._closing.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def start(
        self, tmp_path: Path, config: str, controlling: bool, env: dict | None = None
    ) -> subprocess.Popen:
        (tmp_path / "robot.yaml").write_text(config)
        args = ["--config", str(tmp_path / "robot.yaml")]
        argv = (
            [sys.executable, "-c", ON_A_TERMINAL, *args]
            if controlling
            else [sys.executable, "-m", "anse_hw", *args]
        )
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=daemon_env(tmp_path, env),
            start_new_session=not controlling,
        )
        os.close(self.slave)
        return proc

    def port(self) -> int:
        found = wait_for(
            lambda: re.search(rb"running on ws://\S+:(\d+)", self.output), what="the port"
        )
        return int(found.group(1))

    def hang_up(self) -> None:
        self._closing.set()
        self._reader.join()
        os.close(self.master)


def test_a_closed_terminal_stops_the_daemon_cleanly(tmp_path):
    """An SSH session ends: the kernel sends SIGHUP; the daemon stops the motor,
    releases the pins and exits 0, though every line it logs meanwhile fails."""
    pins = tmp_path / "pins.json"
    terminal = Terminal()
    proc = terminal.start(tmp_path, CONFIG.format(pins=pins), controlling=True)
    try:
        wait_for(lambda: pin(pins, "GPIO17") == 0.6, what="the motor to move")
        guardian = int(wait_for(lambda: GUARDIAN.search(terminal.output.decode())).group(1))
        terminal.hang_up()
        assert proc.wait(timeout=15) == 0
        assert released_and_safe(pins)
        wait_for(lambda: not alive(guardian), what="the guardian to leave")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_writes_to_a_dead_terminal_neither_stop_nor_wedge_the_daemon(tmp_path):
    """The terminal is gone but no SIGHUP came (it was not the controlling
    one): the log lines fail with EIO; the daemon runs on, under control, and
    a later SIGTERM still ends it cleanly (exit 0, not a failed flush's 120)."""
    pins = tmp_path / "pins.json"
    terminal = Terminal()
    proc = terminal.start(tmp_path, CONFIG.format(pins=pins), controlling=False)
    try:
        wait_for(lambda: pin(pins, "GPIO17") == 0.6, what="the motor to move")
        port = terminal.port()
        terminal.hang_up()
        for _ in range(10):  # each client logs two lines to the dead terminal
            assert asyncio.run(collect(f"ws://127.0.0.1:{port}", lambda events: events))
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert proc.poll() is None and pin(pins, "GPIO17") == 0.6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert released_and_safe(pins)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


WEDGED = """
server: {host: 127.0.0.1, port: 0}
sensors:
  - {name: s, driver: sim, interval: 0.05, profile: script, values: [80, 80, 5, 80]}
actuators:
  - {name: movement, driver: sim, stall_after: 2}
reflexes:
  - {name: stop, sensor: s, below: 10, actuator: movement, command: stop}
  - {name: go, sensor: s, above: 15, actuator: movement, command: move}
"""


def test_a_dead_terminal_cannot_keep_a_wedged_daemon_from_its_forced_exit(tmp_path):
    """A driver hangs the shutdown; the terminal is gone; the second SIGTERM
    must still force the exit (its last words fail with EIO, quietly)."""
    notify = NotifySocket(tmp_path / "notify.sock")
    terminal = Terminal()
    proc = terminal.start(tmp_path, WEDGED, controlling=False, env={"NOTIFY_SOCKET": notify.path})
    try:
        notify.receive(lambda m: "READY=1" in "".join(m))
        terminal.hang_up()
        proc.send_signal(signal.SIGTERM)  # the stop hangs on the wedged motor
        notify.receive(lambda m: "STOPPING=1" in m)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_matrix_covers_every_signal_the_daemon_handles():
    """A signal added to the daemon's list is added to this matrix too."""
    from anse_hw.app.daemon import STOP_SIGNALS

    rt = set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
    assert {s for s in STOP_SIGNALS if s not in rt} == {
        getattr(signal, n) for n in CAUGHT if not n.startswith("SIGRT")
    }
    assert rt <= set(STOP_SIGNALS)
