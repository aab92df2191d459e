"""The guardian: stops the actuators when the daemon dies a death it cannot
handle itself (SIGKILL, the OOM killer, a segfault), where nothing else would.

Raspberry Pi kernels keep GPIO outputs driven after the process that set them
dies.  Under systemd, ExecStopPost runs `--safe-stop` after every exit; from
a terminal, nohup or a container with an init, nothing did.  So the daemon
starts a small second process before it claims any pin, joined to it by two
pipes:

- the daemon holds the write end of the *life* pipe and never writes to it
  until it has stopped everything and released the pins; then it writes one
  "clean" byte and the guardian exits quietly.  Any other end of the daemon
  closes the pipe without that byte: the guardian reads EOF and runs the same
  safe-stop as `--safe-stop` (the config, then the record of the run);
- the guardian holds the write end of the *watch* pipe: if the guardian
  dies (killed, OOM), the daemon reads EOF and stops safely, since nothing
  would cover its own death any more.

The guardian is a fresh interpreter (not a fork: the daemon may have threads
by then, and a fork would carry its memory), in its own process group so a
Ctrl-C in the terminal reaches only the daemon; it ignores the terminal's
signals anyway.  Idle, it has imported little more than `os` and `signal`
(not even site-packages: about 4 MB of private memory): gpiozero and the
config code are loaded only when it must act, at real-time priority where
allowed, and it writes its log only once the pins are driven.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs the idle guardian 0.8 MB
if TYPE_CHECKING:
    import subprocess

CLEAN = b"c"
READY = b"r"
#: Signals a terminal sends; the daemon handles them, the guardian stays.
TERMINAL_SIGNALS = ("SIGINT", "SIGHUP", "SIGQUIT", "SIGTSTP", "SIGTTIN", "SIGTTOU")
#: How long the daemon waits for a new guardian to say it is watching.
READY_TIMEOUT = 30.0
#: A fresh interpreter (-S: without site-packages until it must act, 1 MB
#: less while it waits) finds anse_hw where this one did.
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from anse_hw.app.guardian import main; main()"


class GuardianError(Exception):
    """The guardian could not be started."""


class Guardian:
    """The daemon's side: start it, notice its death, dismiss it."""

    def __init__(self, process: subprocess.Popen, life: int, watch: int) -> None:
        self.process = process
        self.pid: int = process.pid
        self._life = life
        self._watch = watch

    @classmethod
    def start(cls, state: str, config_file: str | None) -> Guardian:
        """A guardian watching this process; GuardianError if none came up.
        (The daemon's imports live in its methods: the guardian process
        imports this module too, and should carry as little as it can.)"""
        import select
        import subprocess

        life_read, life_write = os.pipe()
        watch_read, watch_write = os.pipe()
        package_parent = os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        )
        argv = [
            sys.executable,
            "-S",
            "-c",
            BOOT,
            package_parent,
            str(life_read),
            str(watch_write),
            str(os.getpid()),
            state,
            *([config_file] if config_file else []),
        ]
        try:
            process = subprocess.Popen(
                argv,
                pass_fds=(life_read, watch_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                process_group=0,
            )
        except OSError as exc:
            for fd in (life_read, life_write, watch_read, watch_write):
                os.close(fd)
            raise GuardianError(f"cannot start the guardian: {exc.strerror}") from None
        os.close(life_read)
        os.close(watch_write)
        guardian = cls(process, life_write, watch_read)
        ready, _, _ = select.select([watch_read], [], [], READY_TIMEOUT)
        if not ready or os.read(watch_read, 1) != READY:
            guardian.abandon()
            process.kill()
            process.wait()
            raise GuardianError("the guardian did not start (see the lines above)")
        return guardian

    @property
    def watch_fd(self) -> int:
        """Readable (EOF) when the guardian has died."""
        return self._watch

    def how_it_ended(self) -> str:
        """After EOF on the watch pipe: "killed by SIGKILL", "exit 1"."""
        import subprocess

        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "its pipe closed"
        if code >= 0:
            return f"exit {code}"
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal
            return f"killed by signal {-code}"

    def dismiss(self) -> None:
        """Everything is stopped and released: the guardian may go quietly."""
        with contextlib.suppress(OSError):  # it is gone already
            os.write(self._life, CLEAN)
        self.abandon()

    def abandon(self) -> None:
        """Close our ends without the clean byte: the guardian acts."""
        for fd in (self._life, self._watch):
            with contextlib.suppress(OSError):
                os.close(fd)


# -- the guardian process ------------------------------------------------------


def main() -> None:
    """`python -c BOOT <package dir> <life fd> <watch fd> <daemon pid> <state dir> [config]`."""
    for name in TERMINAL_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    life, watch, pid, state, *config = sys.argv[2:]
    with contextlib.suppress(OSError):  # the daemon is gone already: EOF below says so
        os.write(int(watch), READY)
    try:
        said = os.read(int(life), 1)
    except OSError:
        said = b""
    if said == CLEAN:
        sys.exit(0)
    sys.exit(stop_for(int(pid), state, config[0] if config else None))


def stop_for(pid: int, state: str, config_file: str | None) -> int:
    """The daemon died without stopping: the safe-stop, first; the log, after
    (a terminal that is gone or a pipe nobody reads must not delay a pin)."""
    from anse_hw.app import realtime

    realtime.enter()  # a busy machine must not delay the stop
    import site

    site.main()  # gpiozero, yaml: where this Python keeps its packages
    import logging
    from pathlib import Path

    from anse_hw.app import logsetup, safestop

    held = logsetup.HeldLog()
    root = logging.getLogger()
    root.handlers[:] = [held]
    root.setLevel(logging.INFO)
    log = logging.getLogger(__name__)
    log.error("guardian: anse-hw (pid %d) ended without stopping: safe-stop", pid)
    code = safestop.run(config_file, Path(state))
    log.info("guardian: safe-stop done (exit %d)", code)
    held.write_to(logsetup.stream_handler())
    return code
