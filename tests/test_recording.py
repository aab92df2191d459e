"""Recording and replay (README.md, "Recording and replay"): MCAP files from
the daemon as a process,
read back with the mcap reader, replayed and verified."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
from mcap.reader import make_reader
from mcap.writer import Writer

from anse_hw import recording
from anse_hw.drivers.protocols import tfmini_frame
from tests.conftest import (
    ROOT,
    daemon_env,
    fast_sim_config,
    hardware_config,
    wait_for,
)
from tests.serialdev import PtyDevice


def anse(*args: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anse_hw", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=daemon_env(tmp_path),
    )


def one_file(directory: Path) -> Path:
    files = sorted(directory.glob("*.mcap"))
    assert len(files) == 1, files
    return files[0]


def record_sim(start_daemon, watch, tmp_path, stops: int = 2) -> Path:
    """A --sim style run, recorded until the motor has stopped `stops` times."""
    daemon = start_daemon(
        fast_sim_config(0, interval=0.03), args=("--record", str(tmp_path / "rec"))
    )
    stream = watch(daemon.url)
    wait_for(
        lambda: stream.actuator_states().count("STOPPED") >= stops,
        what="stops and restarts",
    )
    assert daemon.signal(signal.SIGTERM) == 0
    return one_file(tmp_path / "rec")


def test_a_sim_run_replays_to_the_same_decisions(start_daemon, watch, tmp_path):
    path = record_sim(start_daemon, watch, tmp_path)
    summary = recording.scan(path)
    assert summary.complete and summary.ended == "shutdown"
    assert {"STOPPED", "MOVING"} <= {d[2] for d in recording.decisions(path) if d[0] == "actuator"}
    result = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "replay matches the recording" in result.stderr


def test_a_tfmini_run_with_a_stop_and_a_resume_replays_the_same(start_daemon, watch, tmp_path):
    device = PtyDevice(tmp_path / "ttyLIDAR")
    try:
        text = hardware_config(0, device.path, tmp_path / "pins.json", max_age=0.5)
        daemon = start_daemon(text, args=("--record", str(tmp_path / "rec")))
        stream = watch(daemon.url)
        for cm, state in ((80, "MOVING"), (5, "STOPPED"), (12, None), (60, "MOVING")):
            mark = len(stream.events)
            device.write(tfmini_frame(cm) + tfmini_frame(cm, strength=10))  # and a weak one
            if state:
                stream.wait_state(state, after=mark)
        assert daemon.signal(signal.SIGTERM) == 0
    finally:
        device.close()
    path = one_file(tmp_path / "rec")
    problems = [r.problem for r in recording.readings(path) if r.value is None]
    assert any("strength" in p for p in problems), "invalid readings are recorded with why"
    result = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_an_edited_decision_fails_verify_naming_it(start_daemon, watch, tmp_path):
    path = record_sim(start_daemon, watch, tmp_path)
    edited = tmp_path / "edited.mcap"
    assert stop_made_a_move(path, edited, "movement")
    result = anse("replay", str(edited), "--verify", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "differs: recorded ('actuator', 'movement', 'MOVING')" in result.stderr
    assert "replayed ('actuator', 'movement', 'STOPPED')" in result.stderr


def stop_made_a_move(path: Path, edited: Path, actuator: str) -> bool:
    """A copy of the recording at `path` in which `actuator`'s first STOPPED
    reads MOVING: the decision that did not happen.  False if it never stopped."""
    changed = False
    with open(path, "rb") as source, open(edited, "wb") as target:
        reader = make_reader(source)
        writer = Writer(target)
        writer.start()
        schemas, channels = {}, {}
        for schema, channel, message in reader.iter_messages():
            if schema.id not in schemas:
                schemas[schema.id] = writer.register_schema(
                    schema.name, schema.encoding, schema.data
                )
            if channel.id not in channels:
                channels[channel.id] = writer.register_channel(
                    channel.topic, channel.message_encoding, schemas[schema.id]
                )
            data = json.loads(message.data)
            if (
                not changed
                and data.get("type") == "actuator"
                and data["data"]["actuator_name"] == actuator
                and data["data"]["state"] == "STOPPED"
            ):
                data["data"]["state"] = "MOVING"  # the decision that did not happen
                changed = True
            writer.add_message(
                channels[channel.id],
                message.log_time,
                json.dumps(data).encode(),
                message.publish_time,
            )
        for metadata in reader.iter_metadata():
            writer.add_metadata(metadata.name, metadata.metadata)
        writer.finish()
    return changed


def test_a_recording_cut_short_by_sigkill_still_replays(start_daemon, watch, tmp_path):
    daemon = start_daemon(
        fast_sim_config(0, interval=0.03), args=("--record", str(tmp_path / "rec"))
    )
    stream = watch(daemon.url)
    wait_for(lambda: stream.actuator_states().count("STOPPED") >= 2, what="stops")
    wait_for(lambda: one_file(tmp_path / "rec").stat().st_size > 20_000, what="a second's sync")
    daemon.proc.kill()
    daemon.proc.wait()
    path = one_file(tmp_path / "rec")
    summary = recording.scan(path)
    assert not summary.complete and summary.readings and next(recording.decisions(path), None)
    assert anse("replay", str(path), "--verify", tmp_path=tmp_path).returncode == 0
    live = anse(
        "replay",
        str(path),
        "--speed",
        "20",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        tmp_path=tmp_path,
    )
    assert live.returncode == 0 and "replay finished" in live.stderr, live.stderr
    listing = anse("recordings", str(tmp_path / "rec"), tmp_path=tmp_path)
    assert path.name in listing.stdout and "(cut short)" in listing.stdout


def test_every_message_validates_against_its_json_schema(start_daemon, watch, tmp_path):
    path = record_sim(start_daemon, watch, tmp_path, stops=1)
    topics = set()
    with open(path, "rb") as handle:
        reader = make_reader(handle)
        assert reader.get_summary() is not None, "a complete file has its index"
        for schema, channel, message in reader.iter_messages():
            assert schema.encoding == "jsonschema" and channel.message_encoding == "json"
            jsonschema.validate(json.loads(message.data), json.loads(schema.data))
            topics.add(channel.topic)
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    assert topics == {"/events", "/readings/distance_sensor"}
    assert {"anse-hw", "anse-hw-end"} <= set(metadata)
    assert "distance_sensor" in metadata["anse-hw"]["config_yaml"]
    assert "proximity_safeguard" in metadata["anse-hw"]["config_resolved"]


def test_a_full_or_read_only_disk_is_one_line_and_the_robot_runs_on(tmp_path, start_daemon, watch):
    # A disk that cannot be written at the start refuses the start instead
    # (tests/test_recording_hostile.py); one that fills up later:
    # the file size limit (RLIMIT_FSIZE) stands in for a full disk.
    (tmp_path / "robot.yaml").write_text(fast_sim_config(0, interval=0.02))
    limited = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anse_hw",
            "--config",
            str(tmp_path / "robot.yaml"),
            "--record",
            str(tmp_path / "full"),
        ],
        cwd=ROOT,
        env=daemon_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000)),
    )
    try:

        def said() -> bool:
            return any("recording stopped:" in line for line in lines)

        lines: list[str] = []
        for line in limited.stdout:
            lines.append(line)
            if said():
                break
        assert "File too large" in "".join(lines) or "No space" in "".join(lines)
        assert limited.poll() is None, "the robot runs on"
    finally:
        limited.send_signal(signal.SIGTERM)
        rest = limited.communicate(timeout=30)[0]
    assert limited.returncode == 0
    assert "".join([*lines, rest]).count("recording stopped:") == 1


def test_files_rotate_and_only_the_newest_are_kept(start_daemon, watch, tmp_path):
    text = fast_sim_config(0, interval=0.01) + (
        f"recording: {{dir: {tmp_path / 'rec'}, max_mb: 0.02, keep: 2}}\n"
    )
    daemon = start_daemon(text)
    wait_for(
        lambda: "recording to" in daemon.log() and daemon.log().count("recording to") >= 4,
        timeout=30,
        what="four files",
    )
    assert daemon.signal(signal.SIGTERM) == 0
    files = sorted((tmp_path / "rec").glob("*.mcap"))
    assert len(files) <= 3  # the two kept and the one being written when it stopped
    assert all(recording.scan(f).ended in ("rotated", "shutdown") for f in files)


def test_the_sim_trace_profile_plays_a_recording(start_daemon, watch, tmp_path):
    path = record_sim(start_daemon, watch, tmp_path, stops=1)
    recorded = [round(r.value, 2) for r in recording.readings(path)]
    daemon = start_daemon(
        fast_sim_config(0, interval=0.05, extra_sensor=f", profile: trace, trace: {path}")
    )
    stream = watch(daemon.url)
    wait_for(lambda: len(stream.of_type("sensor")) >= 10, what="readings")
    played = [e["data"]["value"] for e in stream.of_type("sensor")][:10]
    looped = recorded * 2  # the trace repeats; the watcher joined somewhere in it
    assert any(looped[i : i + len(played)] == played for i in range(len(recorded))), played
