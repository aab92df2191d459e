"""Recordings against hostile files, arguments and places: whatever the input,
replay, --verify and recordings end in one line and a chosen exit code (never
a traceback or a hang), memory stays bounded, no secret reaches a file, and a
recording that was asked for is written or refused."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcap.opcode import Opcode
from mcap.reader import make_reader
from mcap.records import Channel, DataEnd, Message, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import Writer

from anse_hw import config, recording
from anse_hw.app import cli, replay
from anse_hw.app.devices import build_actuators
from anse_hw.app.listing import EXIT_SKIPPED as SKIPPED
from anse_hw.engine import Engine
from anse_hw.errors import Refused
from anse_hw.readings import Sample
from tests.conftest import (
    ROOT,
    DaemonProcess,
    StreamWatcher,
    daemon_env,
    fast_sim_config,
    wait_for,
    write_config,
)
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


def refusal(
    tmp_path: Path, *args: str, config: str = "", text: str = fast_sim_config(0)
) -> subprocess.CompletedProcess:
    """The daemon started as a user would, expected to refuse the start."""
    (tmp_path / "robot.yaml").write_text(text + config)
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
    result = refusal(tmp_path, "--record", target)
    refused(result, 1, "--record", reason)
    assert target in error_lines(result.stderr)[0]
    assert "Waiting for connections" not in result.stderr


def test_an_unwritable_recording_dir_in_the_config_refuses_the_start(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = refusal(tmp_path, config=f"recording: {{dir: {tmp_path / 'a-file'}}}\n")
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


def test_rotation_every_second_never_deletes_the_file_being_written(start_daemon, tmp_path):
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


# -- reading back: what every surface is tried with ------------------------------

CONFIG = fast_sim_config(0, interval=0.03)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A real recording: the sim robot stopping and moving again twice, then SIGTERM."""
    directory = tmp_path_factory.mktemp("sample")
    config = write_config(directory, CONFIG)
    args = ["--config", str(config), "--record", str(directory / "rec")]
    daemon = DaemonProcess(args, None, directory / "daemon.log")
    try:
        daemon.wait_listening()
        stream = StreamWatcher(daemon.url)
        wait_for(lambda: stream.actuator_states().count("STOPPED") >= 2, timeout=30, what="stops")
        stream.close()
        assert daemon.signal(signal.SIGTERM) == 0, daemon.log()
    finally:
        daemon.stop()
    return one_file(directory / "rec")


def rewritten(source: Path, target: Path, **options: Any) -> Path:
    """`source`'s records written again with mcap's Writer and `options`."""
    with open(source, "rb") as reading, open(target, "wb") as writing:
        writer = Writer(writing, **options)
        writer.start()
        ids: dict[tuple[str, int], int] = {}
        for record in StreamReader(reading).records:
            if isinstance(record, DataEnd):
                break  # the summary repeats the schemas and channels
            if isinstance(record, Schema):
                ids["s", record.id] = writer.register_schema(
                    record.name, record.encoding, record.data
                )
            elif isinstance(record, Channel):
                ids["c", record.id] = writer.register_channel(
                    record.topic, record.message_encoding, ids["s", record.schema_id]
                )
            elif isinstance(record, Message):
                writer.add_message(
                    ids["c", record.channel_id], record.log_time, record.data, record.publish_time
                )
            elif isinstance(record, Metadata):
                writer.add_metadata(record.name, record.metadata)
        writer.finish()
    return target


@pytest.fixture(scope="module")
def plain(sample, tmp_path_factory) -> Path:
    """The sample as recordings were written before chunking: every record at
    the top level, uncompressed, with the data section's CRC."""
    directory = tmp_path_factory.mktemp("plain")
    return rewritten(sample, directory / sample.name, use_chunking=False, enable_data_crcs=True)


@pytest.fixture(params=["chunked", "unchunked"])
def either(request, sample, plain) -> Path:
    """The sample as recorded now (chunked), and as recorded before."""
    return sample if request.param == "chunked" else plain


@pytest.fixture
def run(capsys):
    """`anse-hw ARGS` in this process (the same main() as the command): for
    the sweeps of many files, where starting Python each time would dominate."""

    def run_main(*args: str | Path) -> subprocess.CompletedProcess:
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run_main


def framing(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, opcode, body) of each record, by MCAP's framing alone: the
    magic, then records of opcode (u8), length (u64) and body."""
    found, at = [], len(recording.MAGIC)
    while at + 9 <= len(data) - len(recording.MAGIC):
        opcode, length = struct.unpack_from("<BQ", data, at)
        found.append((at, opcode, data[at + 9 : at + 9 + length]))
        at += 9 + length
    return found


def messages(data: bytes) -> list[tuple[int, str, int, bytes]]:
    """(record offset, topic, offset of the payload, payload) of each message."""
    topics: dict[int, str] = {}
    found = []
    for offset, opcode, body in framing(data):
        if opcode == Opcode.CHANNEL:
            channel, _, length = struct.unpack_from("<HHI", body)
            topics[channel] = body[8 : 8 + length].decode()
        elif opcode == Opcode.MESSAGE:
            topic = topics[struct.unpack_from("<H", body)[0]]
            found.append((offset, topic, offset + 9 + 22, body[22:]))
    return found


def data_end(data: bytes) -> int:
    return next(offset for offset, opcode, _ in framing(data) if opcode == Opcode.DATA_END)


def flipped(data: bytes, at: int, bit: int) -> bytes:
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]


def one_line_or_fine(result: subprocess.CompletedProcess, path: Path) -> None:
    """Any outcome but a traceback: 0, 1 naming a decision, or 2 in one line naming the file."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1, 2), result
    if result.returncode == 2:
        (line,) = error_lines(result.stderr)
        assert str(path) in line, line
    if result.returncode == 1:
        assert "decision" in result.stderr, result.stderr


def listed_or_skipped(listing: subprocess.CompletedProcess, path: Path) -> None:
    """`recordings` lists the file (0), or skips it in one line naming it (1)."""
    assert "Traceback" not in listing.stderr, listing.stderr
    if listing.returncode == 0:
        assert listing.stdout.startswith(path.name), listing
    else:
        assert listing.returncode == SKIPPED and listing.stdout == "", listing
        (note,) = listing.stderr.splitlines()
        assert "skipped:" in note and str(path) in note, note


# -- garbage and files that are not recordings -----------------------------------------


NOT_RECORDINGS = {
    "zero-byte": (b"", "is empty, not an MCAP recording"),
    "text": (b"hello, this is not a recording\n" * 100, "is not an MCAP recording"),
    "zip": (b"PK\x03\x04" + bytes(range(256)) * 8, "is not an MCAP recording"),
    "random": (random.Random(1).randbytes(1 << 20), "is not an MCAP recording"),
    "magic-then-garbage": (
        recording.MAGIC + random.Random(2).randbytes(4096) + recording.MAGIC,
        "is damaged",
    ),
}


@pytest.mark.parametrize("name", NOT_RECORDINGS)
def test_a_file_that_is_no_recording_is_one_line_on_every_surface(run, tmp_path, name):
    content, reason = NOT_RECORDINGS[name]
    path = tmp_path / "rec" / f"{name}.mcap"
    path.parent.mkdir()
    path.write_bytes(content)
    for args in (("--verify",), ("--port", "0"), ("--speed", "1000")):
        refused(run("replay", path, *args), 2, str(path), reason)
    listing = run("recordings", path.parent)
    assert listing.returncode == SKIPPED and listing.stdout == ""
    (note,) = listing.stderr.splitlines()
    assert "skipped:" in note and str(path) in note and reason in note


# -- cut short anywhere ---------------------------------------------------------------


def test_a_file_cut_anywhere_replays_what_is_there(run, either, tmp_path):
    data = either.read_bytes()
    boundaries = [offset for offset, _, _ in framing(data)] + [len(data) - 8, len(data)]
    cuts = sorted(
        {1, 7, 8, 9}
        | set(random.Random(3).sample([b + d for b in boundaries for d in (-1, 0, 1)], 40))
    )
    readings_at = {offset for offset, topic, _, _ in messages(data) if "/readings/" in topic}
    first_reading = next(  # the end of the first record holding a reading
        offset + 9 + len(body)
        for offset, opcode, body in framing(data)
        if opcode == Opcode.CHUNK or offset in readings_at
    )
    folder = tmp_path / "cuts"
    folder.mkdir()
    for cut in cuts:
        path = folder / f"cut-{cut:07d}.mcap"
        path.write_bytes(data[:cut])
        result = run("replay", path, "--verify")
        if cut >= first_reading:
            assert result.returncode == 0, (cut, result.stderr)
            assert "replay matches the recording" in result.stderr
        else:  # nothing to replay yet
            refused(result, 2, str(path), "no readings recorded")
    listing = run("recordings", folder)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == len(cuts), lines
    for cut, line in zip(cuts, lines, strict=True):  # the names sort as the cuts do
        assert ("(cut short)" in line) == (cut < len(data)), (cut, line)
    # And live, through a daemon: one cut inside a message, one inside the summary.
    for cut in (data_end(data) - 40, len(data) - 30):
        path = tmp_path / f"live-{cut}.mcap"
        path.write_bytes(data[:cut])
        live = anse("replay", str(path), "--speed", "1000", "--port", "0", tmp_path=tmp_path)
        assert live.returncode == 0 and "replay finished" in live.stderr, live.stderr


# -- bit flips ------------------------------------------------------------------------

READING_KEYS = (b'"sensor"', b'"value"', b'"arrived"')
EVENT_KEYS = {
    "reflex": (b'"type"', b'"data"', b'"reflex_name"', b'"condition"', b'"triggered"'),
    "actuator": (b'"actuator_name"', b'"state"'),
}


def test_a_bit_flipped_in_a_json_key_names_the_record_and_its_offset(run, plain, tmp_path):
    # Unchunked, where a JSON key is bytes in the file (in a chunk, the chunk's
    # CRC catches the flip first), and cut before the data section's CRC, so
    # that the content is what is checked.
    data = plain.read_bytes()
    data = data[: data_end(data)]
    targets = []
    for offset, topic, start, payload in messages(data):
        keys = READING_KEYS if topic.startswith("/readings/") else ()
        if topic == "/events":
            keys = EVENT_KEYS.get(json.loads(payload)["type"], ())
        targets += [(offset, start + payload.index(key)) for key in keys if key in payload]
    chosen = random.Random(4).sample(targets, 30)
    rng = random.Random(5)
    for offset, key_at in chosen:
        path = tmp_path / "flipped.mcap"
        path.write_bytes(flipped(data, key_at + rng.randrange(1, 4), rng.randrange(8)))
        refused(run("replay", path, "--verify"), 2, str(path), f"is damaged at offset {offset}:")
        listing = run("recordings", tmp_path)
        assert listing.returncode == SKIPPED and f"offset {offset}" in listing.stderr
        path.unlink()


def test_a_bit_flipped_anywhere_is_never_a_traceback(run, either, tmp_path):
    data = either.read_bytes()
    end = data_end(data)
    rng = random.Random(6)
    for at in [0, 3, end - 1, *rng.sample(range(len(data)), 30)]:
        path = tmp_path / "flipped.mcap"
        path.write_bytes(flipped(data, at, rng.randrange(8)))
        result = run("replay", path, "--verify")
        if at < end:  # in the data section: the CRC (or the parse before it) catches it
            refused(result, 2, str(path))
        else:
            one_line_or_fine(result, path)
        listed_or_skipped(run("recordings", tmp_path), path)


# -- valid MCAP with odd content --------------------------------------------------------


def write(
    path: Path,
    *entries: tuple[str, Any],
    config: str | None = CONFIG,
    end: str | None = "shutdown",
    metadata: tuple[tuple[str, dict[str, str]], ...] = (),
    encoding: str = "json",
) -> Path:
    """A recording written with mcap's own Writer (chunked, compressed): each
    entry is (topic, JSON value or raw bytes), 10 ms apart."""
    with open(path, "wb") as handle:
        writer = Writer(handle)
        writer.start()
        if config is not None:
            writer.add_metadata("anse-hw", {"config_yaml": config})
        for name, values in metadata:
            writer.add_metadata(name, values)
        schema = writer.register_schema("anse-hw.any", "jsonschema", b"{}")
        channels: dict[str, int] = {}
        for i, (topic, payload) in enumerate(entries):
            if topic not in channels:
                channels[topic] = writer.register_channel(topic, encoding, schema)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            writer.add_message(channels[topic], i * 10_000_000, data, i * 10_000_000)
        if end is not None:
            writer.add_metadata("anse-hw-end", {"ended": end})
        writer.finish()
    return path


def reading(value: Any = 50.0, at: float | None = 0.0, sensor: str = "distance_sensor") -> tuple:
    return (f"/readings/{sensor}", {"sensor": sensor, "value": value, "arrived": at})


def event(kind: str, data: Any) -> tuple:
    return ("/events", {"type": kind, "timestamp": "2026-01-01T00:00:00.000Z", "data": data})


def decided(reflex: str, condition: str, state: str) -> tuple:
    """The two events of a reflex that moves the motor to `state`."""
    return (
        event("reflex", {"reflex_name": reflex, "condition": condition, "triggered": True}),
        event("actuator", {"actuator_name": "movement", "state": state}),
    )


DS = "/readings/distance_sensor"
#: name: (entries, write() options, words of the one line, whether `recordings` lists it)
ODD: dict[str, tuple[tuple, dict, tuple[str, ...], bool]] = {
    "event-a-list": ((reading(), ("/events", [1, 2])), {}, ("an event that is a list",), False),
    "reading-a-list": (((DS, [50]),), {}, ("a reading that is a list",), False),
    "no-arrived": (
        ((DS, {"sensor": "distance_sensor", "value": 5}),),
        {},
        ("without 'arrived'",),
        False,
    ),
    "no-value": (
        ((DS, {"sensor": "distance_sensor", "arrived": 0}),),
        {},
        ("without 'value'",),
        False,
    ),
    "string-value": ((reading("50"),), {}, ("value is a string",), False),
    "bool-value": ((reading(True),), {}, ("value is true/false",), False),
    "huge-value": (
        ((DS, b'{"sensor": "distance_sensor", "arrived": 0, "value": 1' + b"0" * 400 + b"}"),),
        {},
        ("too large a number",),
        False,
    ),
    "nan-arrived": ((reading(at=math.nan),), {}, ("arrived at nan s",), False),
    "null-arrived": ((reading(at=None),), {}, ("arrived at null",), False),
    "negative-arrived": ((reading(at=-1),), {}, ("arrived at -1 s",), False),
    "far-arrived": ((reading(at=1e300),), {}, ("arrived at 1e+300 s",), False),
    "unknown-sensor": (
        (reading(sensor="ghost"),),
        {},
        ("'ghost'", "its recorded config does not have", "distance_sensor"),
        True,
    ),
    "sensor-not-its-channel": (
        ((DS, {"sensor": "other", "value": 5, "arrived": 0}),),
        {},
        ("a reading of sensor other on the channel of distance_sensor",),
        False,
    ),
    "unknown-event-type": ((reading(), event("bogus", {})), {}, ("event of type bogus",), False),
    "event-data-a-string": (
        (reading(), event("reflex", "x")),
        {},
        ("reflex event whose data is a string",),
        False,
    ),
    "triggered-a-string": (
        (reading(), event("reflex", {"reflex_name": "a", "condition": "c", "triggered": "y"})),
        {},
        ("triggered is a string",),
        False,
    ),
    "actuator-without-state": (
        (reading(), event("actuator", {"actuator_name": "movement"})),
        {},
        ("state is missing",),
        False,
    ),
    "not-json": (((DS, b"{not json"),), {}, ("not JSON",), False),
    "not-utf8": (((DS, b'{"sensor": "\xff"}'),), {}, ("not JSON",), False),
    "nested-too-deep": ((("/events", b"[" * 100_000 + b"]" * 100_000),), {}, ("not JSON",), False),
    "not-json-encoded": ((reading(),), {"encoding": "protobuf"}, ("not JSON",), False),
    "odd-ending": ((reading(),), {"end": "crashed"}, ("ends as crashed",), False),
    "two-configs": (
        (reading(),),
        {"metadata": (("anse-hw", {"config_yaml": CONFIG}),)},
        ("a second anse-hw config",),
        False,
    ),
    "config-without-text": (
        (reading(),),
        {"config": None, "metadata": (("anse-hw", {"version": "1"}),)},
        ("without config_yaml",),
        False,
    ),
    "no-config": ((reading(),), {"config": None}, ("not an anse-hw recording",), False),
    "config-not-yaml": ((reading(),), {"config": "sensors: ["}, ("(recorded config)",), True),
    "config-not-a-mapping": ((reading(),), {"config": "just words"}, ("expected a mapping",), True),
    "config-too-large": (
        (reading(),),
        {"config": "# " + "x" * 40_000 + "\n" + CONFIG},
        ("larger than 32 KiB",),
        True,
    ),
    "no-readings": ((event("sensor", {}),), {}, ("no readings recorded",), True),
}


@pytest.mark.parametrize("name", ODD)
def test_valid_mcap_with_odd_content_is_one_line_on_every_surface(run, tmp_path, name):
    entries, options, words, listed = ODD[name]
    path = write(tmp_path / f"{name}.mcap", *entries, **options)
    for args in (("--verify",), ("--port", "0", "--speed", "1000")):
        refused(run("replay", path, *args), 2, str(path), *words)
    listing = run("recordings", tmp_path)
    if listed:
        assert listing.returncode == 0 and listing.stdout.startswith(path.name), listing
    else:
        assert listing.returncode == SKIPPED and listing.stdout == "", listing
        (note,) = listing.stderr.splitlines()
        assert "skipped:" in note and words[0] in note, note


def test_an_unchunked_recording_verifies_like_the_chunked_one(run, sample, plain):
    """Files from before chunking (one record after another, uncompressed)
    read as the new ones do: the same listing, the same decisions."""
    assert run("replay", plain, "--verify").returncode == 0
    chunked, unchunked = (
        run("recordings", p.parent).stdout.split("  ", 1)[1] for p in (sample, plain)
    )
    assert chunked == unchunked


# -- the config replay runs -------------------------------------------------------------


def test_a_config_without_the_recorded_sensor_is_one_line(run, sample, tmp_path):
    renamed = write_config(tmp_path, CONFIG.replace("distance_sensor", "front"))
    for args in (("--verify",), ("--port", "0")):
        refused(
            run("replay", sample, "--config", renamed, *args),
            2,
            "'distance_sensor'",
            f"--config {renamed} does not have (it has: front)",
        )


def test_replay_never_touches_the_recorded_robots_broker_recorder_or_token(tmp_path):
    """FIFOs where the recorded config names its password and token files would
    hang a replay that read them; a stall_after would hang its motor."""
    os.mkfifo(tmp_path / "password")
    os.mkfifo(tmp_path / "token")
    recorded = (
        fast_sim_config(0, actuator="{name: movement, driver: sim, stall_after: 0}").replace(
            "port: 0}", f"port: 0, control_token_file: {tmp_path / 'token'}}}"
        )
        + f"mqtt: {{host: 127.0.0.1, username: u, password_file: {tmp_path / 'password'}}}\n"
        + "recording: {dir: /proc/nowhere}\n"
    )
    stop, go = config.parse(CONFIG).reflexes
    path = write(
        tmp_path / "rec.mcap",
        reading(50),
        *decided(go.name, go.condition, "MOVING"),
        reading(5, at=0.1),
        *decided(stop.name, stop.condition, "STOPPED"),
        config=recorded,
    )
    given = write_config(tmp_path, recorded)  # the same, given with --config
    for args in ((), ("--config", str(given))):
        verify = anse("replay", str(path), "--verify", *args, tmp_path=tmp_path)
        assert verify.returncode == 0, verify.stderr
    live = anse("replay", str(path), "--speed", "100", "--port", "0", tmp_path=tmp_path)
    assert live.returncode == 0 and "replay finished: 2 readings" in live.stderr, live.stderr


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--from", "99999"), ("--from 99999 is past the end",)),
        (("--to", "-1"), ("--to must be 0 or more seconds, not -1",)),
        (("--from", "nan"), ("--from must be 0 or more seconds, not nan",)),
        (("--from", "inf"), ("--from must be 0 or more seconds, not inf",)),
        (("--from", "soon"), ("--from: 'soon' is not a number of seconds",)),
        (("--from", "5", "--to", "1"), ("--from 5 is after --to 1",)),
        (("--speed", "1e-300"), ("--speed must be from 0.001 to 1e+06, not 1e-300",)),
        (("--speed", "nan"), ("not nan",)),
        (("--speed", "inf"), ("not inf",)),
        (("--speed", "0"), ("not 0",)),
        (("--speed", "-1"), ("not -1",)),
        (("--speed", "fast"), ("--speed: 'fast' is not a number",)),
        (("--verify", "--speed", "2"), ("--speed: only for a live replay",)),
        (("--verify", "--port", "0"), ("--port: only for a live replay",)),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_a_bad_argument_is_a_usage_error_in_one_line(run, sample, args, words):
    refused(run("replay", sample, *args), 2, *words)


def test_recordings_needs_a_directory(run, sample, tmp_path):
    refused(run("recordings", tmp_path / "nonexistent"), 2, "No such file or directory")
    refused(run("recordings", sample), 2, "is not a directory")
    empty = run("recordings", tmp_path)
    assert empty.returncode == 0 and empty.stdout == f"no recordings in {tmp_path}\n"


def test_a_folder_with_bad_files_lists_the_good_ones_and_says_what_it_skipped(sample, tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / sample.name).write_bytes(sample.read_bytes())
    (folder / "empty.mcap").write_bytes(b"")
    (folder / "garbage.mcap").write_bytes(b"garbage" * 100)
    (folder / "dangling.mcap").symlink_to(tmp_path / "gone.mcap")
    os.mkfifo(folder / "fifo.mcap")
    (folder / "folder.mcap").mkdir()
    (folder / "new\nline.mcap").write_bytes(b"")
    listing = anse("recordings", str(folder), tmp_path=tmp_path)
    assert listing.returncode == SKIPPED and "Traceback" not in listing.stderr
    assert listing.stdout.splitlines() == [
        line for line in listing.stdout.splitlines() if line.startswith(sample.name)
    ]
    assert len(listing.stdout.splitlines()) == 1
    notes = listing.stderr.splitlines()
    assert len(notes) == 6 and all("skipped:" in note for note in notes), notes
    for name, reason in (
        ("empty", "is empty"),
        ("garbage", "is not an MCAP recording"),
        ("dangling", "cannot be read (No such file or directory)"),
        ("fifo", "is a FIFO"),
        ("folder", "is a directory"),
        ("new\\nline", "is empty"),
    ):
        assert any(f"{name}.mcap {reason}" in note for note in notes), (name, notes)
    for name in ("fifo", "dangling", "folder"):
        for args in (("--verify",), ("--port", "0")):
            result = anse("replay", str(folder / f"{name}.mcap"), *args, tmp_path=tmp_path)
            refused(result, 2, f"{name}.mcap")


# -- size and time ------------------------------------------------------------------------

#: The command, reporting its own peak memory (VmHWM) on stderr at the end.
PEAK = (
    "import sys; from anse_hw.app.cli import main; code = main(sys.argv[1:]); "
    "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')), "
    "file=sys.stderr); sys.exit(code)"
)


def peak_kib(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    result = subprocess.run(
        [sys.executable, "-c", PEAK, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=500,
        env=daemon_env(tmp_path),
    )
    found = re.search(r"VmHWM:\s+(\d+) kB", result.stderr)
    assert found, result.stderr
    return result, int(found[1])


def long_recording(path: Path, readings: int) -> Path:
    """A recording of `readings` clear readings 10 ms apart, with a padded
    telemetry event after each: one resume at the start, then nothing to decide."""
    go = config.parse(CONFIG).reflexes[1]
    first = (
        event("reflex", {"reflex_name": go.name, "condition": go.condition, "triggered": True}),
        event(
            "actuator", {"actuator_name": "movement", "actuator_type": "motor", "state": "MOVING"}
        ),
    )
    pad = "x" * 200
    with open(path, "wb") as handle:
        writer = Writer(handle, use_chunking=False)
        writer.start()
        writer.add_metadata("anse-hw", {"config_yaml": CONFIG})
        schema = writer.register_schema("anse-hw.any", "jsonschema", b"{}")
        channels = {t: writer.register_channel(t, "json", schema) for t in (DS, "/events")}
        for i in range(readings):
            stamp = i * 10_000_000
            entries = [reading(50.0, at=i / 100), *(first if i == 0 else ())]
            entries.append(event("sensor", {"sensor_name": "distance_sensor", "pad": pad}))
            for topic, payload in entries:
                writer.add_message(channels[topic], stamp, json.dumps(payload).encode(), stamp)
        writer.add_metadata("anse-hw-end", {"ended": "rotated"})
        writer.finish()
    return path


@pytest.mark.timeout(900)
def test_memory_stays_bounded_for_large_files(tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    big = long_recording(folder / "a.mcap", 160_000)
    assert big.stat().st_size > 60e6
    os.link(big, folder / "b.mcap")  # two 60 MB files, as the issue had them
    listing, listed = peak_kib(tmp_path, "recordings", str(folder))
    assert listing.returncode == 0 and "readings 160000" in listing.stdout, listing.stderr
    verify, verified = peak_kib(tmp_path, "replay", str(big), "--verify")
    assert verify.returncode == 0 and "160000 readings, 2 decisions" in verify.stderr
    # About 30 MB here, whatever the size; reading the files whole took 878 MB.
    assert listed < 150_000 and verified < 150_000, (listed, verified)


def test_verify_jumps_a_gap_of_a_thousand_million_seconds(tmp_path):
    cfg = config.parse(CONFIG)
    go = cfg.reflexes[1]
    timeout = f"no valid reading from distance_sensor for {cfg.sensors[0].max_age * 1000:g}ms"

    path = write(
        tmp_path / "gap.mcap",
        reading(50, at=0),
        *decided(go.name, go.condition, "MOVING"),
        *decided("sensor_timeout", timeout, "STOPPED"),
        reading(50, at=1e9),
        *decided(go.name, go.condition, "MOVING"),
        end="rotated",
    )
    result = anse("replay", str(path), "--verify", tmp_path=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "2 readings, 6 decisions" in result.stderr


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # a manual move that lapses while readings keep both sensors fresh
    [("front", 50.0, 0.1), ("back", 50.0, 0.0), ("front", "move", 0.0)]
    + [("front", 50.0, 0.1), ("back", 50.0, 0.0)] * 8
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["front", "back"]),
            # a value, a fault that begins or ends, or an operator's command
            st.one_of(st.floats(0, 100), st.booleans(), st.sampled_from(["move", "stop"])),
            st.floats(0, 2),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_jumping_to_the_ticks_that_matter_decides_as_ticking_every_one(steps):
    """--verify's monitor against the plain loop it replaces (one check_silence
    per tick), on readings, silences and faults of two sensors, and manual
    holds that expire."""
    text = """
sensors:
  - {name: front, driver: sim, interval: 0.05, max_age: 0.3}
  - {name: back, driver: sim, interval: 0.2, max_age: 1.0}
actuators: [{name: movement, driver: sim}]
reflexes:
  - {name: near, sensor: front, below: 10, actuator: movement, command: stop}
  - {name: far, sensor: front, above: 15, actuator: movement, command: move}
  - {name: bump, sensor: back, below: 5, actuator: movement, command: stop}
"""
    cfg = config.parse(text)

    def decisions(jump: bool) -> list:
        published: list[dict] = []
        clock = replay.VirtualClock(0.0)
        sensors = {s.name: replay.ReplaySensor(s.name, s.interval, s.max_age) for s in cfg.sensors}
        engine = Engine(
            cfg, sensors, build_actuators(cfg, None), published.extend, print, clock=clock
        )
        engine.prepare()
        monitor = replay.SilenceMonitor(engine, clock)
        tick, now = 1, 0.0
        for name, value, gap in steps:
            now += gap
            if jump:
                monitor.run_until(now)
            while not jump and tick * engine.tick <= now:
                clock.now = tick * engine.tick
                engine.check_silence()
                tick += 1
            clock.now = now
            if isinstance(value, bool):
                engine.on_fault(name, "unplugged", value)
            elif isinstance(value, str):  # a manual move lapses without a heartbeat
                with contextlib.suppress(Refused):
                    engine.operator("command", "test", actuator="movement", command=value)
            else:
                engine.on_sample(name, Sample(value))
        return [d for d in map(recording.decision, published) if d]

    assert decisions(jump=True) == decisions(jump=False)


def test_names_from_a_file_cannot_break_a_line(run, tmp_path):
    names = ("a\nb", "x\x1b[31m")
    path = write(tmp_path / "names.mcap", *(reading(sensor=name) for name in names))
    listing = run("recordings", tmp_path)
    assert listing.returncode == 0 and listing.stdout.count("\n") == 1, listing
    assert "sensors: a\\nb, x\\x1b[31m" in listing.stdout
    refused(run("replay", path, "--verify"), 2, "'a\\nb', 'x\\x1b[31m'")
    trace = fast_sim_config(0, extra_sensor=f", profile: trace, trace: {path}")
    refused(refusal(tmp_path, text=trace), 1, "has no sensor")
