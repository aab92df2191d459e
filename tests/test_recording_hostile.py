"""Recordings against hostile files, arguments and places: whatever the input,
replay, --verify and recordings end in one line and a chosen exit code (never
a traceback or a hang), memory stays bounded, no secret reaches a file, and a
recording that was asked for is written or refused."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mcap.reader import make_reader

from anse_hw import recording
from tests.conftest import ROOT, daemon_env, fast_sim_config, wait_for
from tests.test_recording import anse, one_file

SECRET = "hunter2-do-not-record"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def refused(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """The one-line refusal: the exit code, one ERROR line with `words`, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def stop(daemon) -> None:
    assert daemon.signal(signal.SIGTERM) == 0, daemon.log()


# -- secrets ----------------------------------------------------------------------


def test_the_mqtt_password_is_nowhere_in_the_file_and_it_still_verifies(
    start_daemon, watch, tmp_path
):
    # Nothing listens on port 1: the bridge keeps reconnecting in the background.
    text = fast_sim_config(0, interval=0.03) + (
        f"mqtt: {{host: 127.0.0.1, port: 1, username: robot, password: {SECRET}}}\n"
        f"# the old password was {SECRET}\n"
    )
    daemon = start_daemon(text, args=("--record", str(tmp_path / "rec")))
    stream = watch(daemon.url)
    wait_for(lambda: stream.actuator_states().count("STOPPED") >= 2, timeout=30, what="stops")
    stop(daemon)
    path = one_file(tmp_path / "rec")
    assert SECRET.encode() not in path.read_bytes()
    with open(path, "rb") as handle:
        stored = next(m for m in make_reader(handle).iter_metadata() if m.name == "anse-hw")
    assert "password: <redacted>" in stored.metadata["config_yaml"]
    result = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_every_secret_key_is_redacted_and_paths_are_kept():
    text = (
        "server: {control_token_file: /etc/anse-hw/token, control_token: abc}\n"
        "mqtt: &m {username: u, password: p1, password_file: /run/pw}\n"
        "other: *m\n"
        "extra: {nested: [{api_secret: s1}, {Password: p2, token: null}]}\n"
    )
    stored = recording.redacted(text)
    for secret in ("abc", "p1", "s1", "p2"):
        assert secret not in stored
    assert "/etc/anse-hw/token" in stored and "/run/pw" in stored  # paths, not secrets
    assert "token: null" in stored  # nothing there to hide
    assert stored.count("<redacted>") == 4, stored  # the alias is stored once, not expanded


# -- a recording that was asked for ------------------------------------------------


def start_recording(tmp_path: Path, *args: str, config: str = "") -> subprocess.CompletedProcess:
    (tmp_path / "robot.yaml").write_text(fast_sim_config(0) + config)
    return subprocess.run(
        [sys.executable, "-m", "anse_hw", "--config", str(tmp_path / "robot.yaml"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=daemon_env(tmp_path),
    )


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("a-file", "is a file, not a directory"),
        ("a-file/below", "Not a directory"),
        ("/proc/anse-hw-recordings", "No such file or directory"),  # nothing can be made there
        ("/sys/kernel", "Permission denied"),  # not even by root
        ("", "is empty"),
    ],
    ids=["file-in-the-way", "under-a-file", "proc", "sys", "empty"],
)
def test_an_unwritable_record_dir_refuses_the_start(tmp_path, where, reason):
    (tmp_path / "a-file").write_text("")
    target = str(tmp_path / where) if where.startswith("a-file") else where
    result = start_recording(tmp_path, "--record", target)
    refused(result, 1, "--record", reason)
    assert target in error_lines(result.stderr)[0]
    assert "Waiting for connections" not in result.stderr


def test_an_unwritable_recording_dir_in_the_config_refuses_the_start(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = start_recording(tmp_path, config=f"recording: {{dir: {tmp_path / 'a-file'}}}\n")
    refused(result, 1, "recording.dir", "is a file, not a directory")


# -- rotation ---------------------------------------------------------------------


def started(path: Path) -> tuple[str, int]:
    """A recording's start in creation order: the second, then the counter."""
    match = re.fullmatch(r"anse-(\d{8}-\d{6})(?:-(\d+))?\.mcap", path.name)
    assert match, path
    return match[1], int(match[2] or 0)


def files_named(log: str) -> list[Path]:
    return [
        Path(line.split("recording to ", 1)[1])
        for line in log.splitlines()
        if "recording to " in line
    ]


def test_rotation_faster_than_a_second_never_deletes_the_file_being_written(start_daemon, tmp_path):
    text = fast_sim_config(0, interval=0.005) + (
        f"recording: {{dir: {tmp_path / 'rec'}, max_mb: 0.02, keep: 1}}\n"
    )
    daemon = start_daemon(text)

    def twelve_files_each_there_while_written() -> bool:
        named = files_named(daemon.log())
        if named and not named[-1].exists():  # a newer file (its line still to come) replaced it
            newest = max((tmp_path / "rec").glob("*.mcap"), key=started, default=None)
            assert newest and started(newest) > started(named[-1]), f"{named[-1]} deleted"
        return len(named) >= 12

    wait_for(twelve_files_each_there_while_written, timeout=60, what="12 files")
    stop(daemon)
    named = files_named(daemon.log())
    assert len({p.name[:20] for p in named}) < len(named), "some started in the same second"
    last = named[-1]
    assert sorted((tmp_path / "rec").glob("*.mcap")) == [last]  # keep: 1, and it is the newest
    listing = anse("recordings", str(tmp_path / "rec"), tmp_path=tmp_path)
    assert listing.returncode == 0 and last.name in listing.stdout, listing
    assert "(cut short)" not in listing.stdout
    live = anse("replay", str(last), "--speed", "1000", "--port", "0", tmp_path=tmp_path)
    if "readings 0," in listing.stdout:  # SIGTERM came just as the file began
        refused(live, 2, "no readings recorded")
    else:
        assert live.returncode == 0 and "replay finished" in live.stderr, live.stderr
