"""The control token: shown only on a terminal, never when it came from the
environment, at least 128 bits, and read only as a small regular text file
(a FIFO, /dev/zero, bytes that are not UTF-8, a NUL in the path: one line and
exit 2, never a hang).  The daemon runs as a process; "a terminal" is a pty."""

from __future__ import annotations

import os
import pty
import re
import secrets
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anse_hw.web.auth import MIN_TOKEN_BITS, TOKEN_ENV, operator_hint, token_problem
from tests.conftest import ROOT, daemon_env, fast_sim_config, wait_for, write_config
from tests.hostile import exchange, request, state_of

START_TIMEOUT = 60  # a start that hangs on a FIFO fails here instead


def on_a_terminal(tmp_path: Path, env: dict[str, str] | None = None) -> str:
    """The daemon's output with stdout and stderr on a pty, up to the line
    saying it is ready; then it is stopped."""
    config = write_config(tmp_path, fast_sim_config(0))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anse_hw", "--config", str(config)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=daemon_env(tmp_path, env),
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while b"Waiting for connections" not in output:
            assert time.monotonic() < deadline, f"no start:\n{output.decode()}"
            if select.select([master], [], [], 0.5)[0]:
                try:
                    output += os.read(master, 65536)
                except OSError:  # the daemon exited and closed its side
                    break
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        os.close(master)
    return output.decode(errors="replace")


def start(tmp_path: Path, config_text: str, env: dict[str, str] | None = None):
    """`anse-hw --config` that is expected to refuse to start."""
    config = write_config(tmp_path, config_text)
    return subprocess.run(
        [sys.executable, "-m", "anse_hw", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        env=daemon_env(tmp_path, env),
    )


def refused(result: subprocess.CompletedProcess) -> str:
    """The one error line of a start refused with exit 2."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "config error" in line]
    assert len(errors) == 1, output
    return errors[0]


def operator_line(output: str) -> str:
    return next(line for line in output.splitlines() if "Operator:" in line)


def test_the_token_is_shown_on_a_terminal(tmp_path):
    output = on_a_terminal(tmp_path)
    token = (state_of(tmp_path) / "control-token").read_text().strip()
    assert re.search(rf"Operator: +http://127\.0\.0\.1:\d+/\?token={token}\r?$", output, re.M)


def test_the_token_never_reaches_a_log(start_daemon, tmp_path):
    daemon = start_daemon(fast_sim_config(0))  # stderr is a file, as under Docker or nohup
    token_file = daemon.state / "control-token"
    token = token_file.read_text().strip()
    log = wait_for(lambda: "Waiting for connections" in daemon.log() and daemon.log())
    assert token not in log
    assert operator_line(log).endswith(f"/?token=<the token in {token_file}>")


def test_a_token_from_the_environment_is_never_shown(tmp_path):
    token = secrets.token_urlsafe(32)
    output = on_a_terminal(tmp_path, {TOKEN_ENV: token})
    assert token not in output
    assert operator_line(output).rstrip().endswith(f"?token=<the token in ${TOKEN_ENV}>")


def test_a_token_from_the_environment_commands(start_daemon):
    token = secrets.token_hex(16)
    daemon = start_daemon(fast_sim_config(0), env={TOKEN_ENV: token})
    headers = [("Host", f"127.0.0.1:{daemon.port}"), ("Authorization", f"Bearer {token}")]
    assert exchange(daemon.port, request("POST", "/api/estop", headers))[0] == 200
    wait_for(lambda: "E-STOP from" in daemon.log(), what="the E-STOP logged")
    assert token not in daemon.log()


WEAK = {
    "one-character": "x",
    "empty": "",
    "21-base64-characters": "a" * 21,  # 126 bits
    "31-hex-digits": "0123456789abcdef0123456789abcde",  # 124 bits
    "with-a-space": "correct horse battery staple is long enough",
    "standard-base64": "q1w2e3r4t5y6u7i8o9p0+/==",
    "two-lines": secrets.token_urlsafe(32) + "\n" + secrets.token_urlsafe(32),
}


@pytest.mark.parametrize("weak", WEAK, ids=list(WEAK))
def test_a_weak_token_in_the_environment_stops_the_start(tmp_path, weak):
    line = refused(start(tmp_path, fast_sim_config(0), {TOKEN_ENV: WEAK[weak]}))
    assert f"${TOKEN_ENV}: the control token" in line and "token_urlsafe" in line, line
    if len(WEAK[weak]) >= 8:
        assert WEAK[weak] not in line, "the token is not echoed"


@pytest.mark.parametrize("weak", ["one-character", "21-base64-characters", "standard-base64"])
def test_a_weak_token_in_the_file_stops_the_start(tmp_path, weak):
    token_file = state_of(tmp_path) / "control-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(WEAK[weak] + "\n")
    line = refused(start(tmp_path, fast_sim_config(0)))
    assert f"{token_file}: the control token" in line and "token_urlsafe" in line, line


def token_file_config(path: str) -> str:
    return fast_sim_config(0).replace("port: 0}", f'port: 0, control_token_file: "{path}"}}')


def test_token_files_that_are_not_small_text_stop_the_start(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + os.urandom(30))
    big = tmp_path / "big"
    big.write_text("a" * 100_000)
    cases = {
        "a FIFO": str(fifo),  # hung the start
        "/dev/zero": "/dev/zero",  # exhausted memory
        "not UTF-8": str(binary),  # a traceback
        "a directory": str(tmp_path),
        "too large": str(big),
        "a NUL in the path": f"{tmp_path}/a\\0b",  # a traceback
    }
    for what, path in cases.items():
        line = refused(start(tmp_path, token_file_config(path)))
        assert "control_token_file" in line or path.replace("\\0", "\\x00") in line, (what, line)


def test_the_default_token_file_as_a_fifo_stops_the_start(tmp_path):
    state_of(tmp_path).mkdir(parents=True)
    os.mkfifo(state_of(tmp_path) / "control-token")
    line = refused(start(tmp_path, fast_sim_config(0)))
    assert "control-token is a FIFO, not a regular file" in line, line


def test_an_empty_token_file_is_given_a_new_token(start_daemon, tmp_path):
    token_file = state_of(tmp_path, "robot0.yaml") / "control-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("\n")  # was "[Errno 17] File exists"
    daemon = start_daemon(fast_sim_config(0))
    token = token_file.read_text().strip()
    assert token_problem(token) is None
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    wait_for(lambda: "replacing an empty file" in daemon.log(), what="the log line")
    assert "Traceback" not in daemon.log()
    headers = [("Host", f"127.0.0.1:{daemon.port}"), ("Authorization", f"Bearer {token}")]
    assert exchange(daemon.port, request("POST", "/api/estop", headers))[0] == 200


# -- on values ------------------------------------------------------------------


def test_made_tokens_are_strong_enough():
    for token in (secrets.token_urlsafe(16), secrets.token_hex(16), secrets.token_urlsafe(32)):
        assert token_problem(token) is None, token


@settings(max_examples=1000)
@given(st.text(max_size=60))
def test_token_strength_on_values(token):
    problem = token_problem(token)
    safe = re.fullmatch(r"[A-Za-z0-9_-]+", token)
    bits = len(token) * (4 if re.fullmatch(r"[0-9a-fA-F]+", token) else 6)
    assert (problem is None) == bool(safe and bits >= MIN_TOKEN_BITS), (token, problem)
    assert problem is None or (problem and "\n" not in problem)


def test_the_operator_line_shows_a_token_only_on_a_terminal(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    url, path = "http://robot:8001/", Path("/var/lib/anse-hw/control-token")
    assert operator_hint(url, "T0KEN", path, True) == f"{url}?token=T0KEN"
    assert "T0KEN" not in operator_hint(url, "T0KEN", path, False)
    monkeypatch.setenv(TOKEN_ENV, "T0KEN")
    assert "T0KEN" not in operator_hint(url, "T0KEN", path, True)
