"""State per robot (issue 19 item 4): every robot of a user, every --sim run
and every replay keeps its own latch and token, though all share one state
base (STATE_DIRECTORY here, as under systemd)."""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import fast_sim_config, run_cli, wait_for

SIM = ("--sim", "--host", "127.0.0.1", "--port", "0")


def robot_config(tmp_path: Path, name: str, robot_id: str | None = None) -> Path:
    """A real robot (a motor on the mock pin factory) in its own config file."""
    text = (f"robot_id: {robot_id}\n" if robot_id else "") + fast_sim_config(
        0, actuator="{name: movement, driver: gpio, forward: 17, backward: 18}"
    )
    text += f"gpio: {{pin_factory: mock, mock_state_file: {tmp_path / (name + '-pins.json')}}}\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def post(daemon, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{daemon.port}{path}",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def token(daemon) -> str:
    return (daemon.state / "control-token").read_text().strip()


def latched(daemon) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/api/session") as answer:
        return json.loads(answer.read())["estop_latched"]


def test_two_robots_and_a_sim_run_keep_independent_latches(start_daemon, tmp_path):
    alpha = robot_config(tmp_path, "alpha", robot_id="alpha")
    beta = robot_config(tmp_path, "beta")  # keyed by its file's real path

    def start_all():
        return (
            start_daemon(args=("--config", str(alpha))),
            start_daemon(args=("--config", str(beta))),
            start_daemon(args=SIM),
        )

    def restart_all(daemons):
        for daemon in daemons:
            assert daemon.signal(signal.SIGTERM) == 0
        return start_all()

    a, b, sim = start_all()
    base = tmp_path / "state"
    assert a.state == base / "alpha" and sim.state == base / "sim"
    assert re.fullmatch(r"beta\.[0-9a-f]{8}", b.state.name) and b.state.parent == base
    assert len({token(a), token(b), token(sim)}) == 3
    assert post(a, "/api/reset", token(b)) == 401, "one robot's token commands no other"

    # The simulation's E-stop latches the simulation only.
    assert post(sim, "/api/estop", token(sim)) == 200
    a, b, sim = restart_all((a, b, sim))
    assert (latched(a), latched(b), latched(sim)) == (False, False, True)

    # One robot's E-stop latches that robot only.
    assert post(a, "/api/estop", token(a)) == 200
    a, b, sim = restart_all((a, b, sim))
    assert (latched(a), latched(b), latched(sim)) == (True, False, True)
    assert "E-STOP LATCHED from the last run" in a.log()


def test_a_latched_legacy_latch_is_adopted_once(start_daemon, tmp_path):
    """Versions before per-robot state kept one estop.json for every robot."""
    base = tmp_path / "state"
    base.mkdir()
    (base / "estop.json").write_text('{"latched": true, "by": "api", "since": "then"}')
    first = start_daemon(args=("--config", str(robot_config(tmp_path, "first"))))
    assert latched(first) and "adopted from" in first.log()
    assert not (base / "estop.json").exists()
    second = start_daemon(args=("--config", str(robot_config(tmp_path, "second"))))
    assert not latched(second)


def test_a_replay_keeps_its_state_apart_from_the_recorded_robot(start_daemon, watch, tmp_path):
    recordings = tmp_path / "rec"
    robot = robot_config(tmp_path, "robot")
    daemon = start_daemon(args=("--config", str(robot), "--record", str(recordings)))
    # Two seconds of readings, replayed at a fifth of the pace: the replay
    # runs long enough to be asked about its latch.
    stream = watch(daemon.url)
    wait_for(lambda: len(stream.of_type("sensor")) >= 40, what="40 readings recorded")
    assert post(daemon, "/api/estop", token(daemon)) == 200
    assert daemon.signal(signal.SIGTERM) == 0
    state = daemon.state
    kept = {p.name: p.read_bytes() for p in state.iterdir()}
    (recording,) = recordings.glob("*.mcap")

    replay = start_daemon(
        args=("replay", str(recording), "--speed", "0.2", "--host", "127.0.0.1", "--port", "0")
    )
    assert not replay.state.is_relative_to(tmp_path / "state")
    assert not latched(replay)
    assert replay.proc.wait(timeout=60) == 0
    assert not replay.state.exists(), "thrown away"
    assert {p.name: p.read_bytes() for p in state.iterdir()} == kept


def test_check_and_the_banner_say_where_the_state_lives(start_daemon, tmp_path):
    config = robot_config(tmp_path, "shown", robot_id="shown")
    result = run_cli("--config", str(config), "--check")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("state: "))
    assert line.split()[1].endswith("/shown")
    assert "(E-stop latch, control token, safe-stop" in line
    daemon = start_daemon(args=("--config", str(config)))
    wait_for(lambda: (daemon.state / "control-token").exists(), what="the token")
    assert daemon.state.name == "shown"


def test_a_robot_id_is_checked(tmp_path):
    for bad, says in (("'a b'", "expected 1-64 of"), ("sim", "reserved"), ("sim-x", "reserved")):
        config = tmp_path / "bad.yaml"
        config.write_text(f"robot_id: {bad}\n" + fast_sim_config(0))
        result = run_cli("--config", str(config), "--check")
        assert result.returncode == 2 and says in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr
