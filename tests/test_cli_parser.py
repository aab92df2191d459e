"""One command-line parser: every subcommand is in --help, and the small
verbs start without the daemon's heavy imports."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run_cli

SUBCOMMANDS = ("replay", "recordings", "example", "install-service", "uninstall-service", "health")
#: What the daemon needs and `example` or `install-service --help` must not load.
HEAVY = ("websockets", "gpiozero", "serial", "aiomqtt", "mcap", "yaml", "anse_hw.app.daemon")


def test_help_lists_every_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for verb in SUBCOMMANDS:
        assert f"\n    {verb} " in result.stdout or f"\n    {verb}\n" in result.stdout, verb


def loaded_after(argv: list[str]) -> list[str]:
    """The heavy modules a fresh interpreter holds after cli.main(argv)."""
    code = (
        "import sys, contextlib, io\n"
        "from anse_hw.app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_example_runs_without_the_daemon_stack():
    assert loaded_after(["example"]) == []
    assert loaded_after(["example", "pi-robot"]) == []


def test_install_service_help_runs_without_the_daemon_stack():
    assert loaded_after(["install-service", "--help"]) == []


def test_a_daemon_option_before_a_subcommand_is_refused_not_ignored():
    """`anse-hw --config a.yaml health` would ask the default port, not a.yaml's."""
    result = run_cli("--config", "robot.yaml", "health")
    assert result.returncode == 2
    assert "the daemon's options go without a subcommand" in result.stderr
    assert "Traceback" not in result.stderr
