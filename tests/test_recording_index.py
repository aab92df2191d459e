"""Recordings as MCAP tools expect them: chunked, compressed and indexed, with
a summary a viewer seeks by, and message times on the wall clock (README.md,
"Recording and replay")."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from tests.conftest import ROOT, daemon_env, fast_sim_config, wait_for
from tests.test_recording import anse, one_file
from tests.test_recording_hostile import data_end, flipped, one_line_or_fine, refused, run

__all__ = ["run"]  # the fixture: `anse-hw ARGS` in this process


def test_a_recording_is_chunked_compressed_and_indexed_on_the_wall_clock(
    start_daemon, watch, tmp_path
):
    before = time.time_ns()
    daemon = start_daemon(
        fast_sim_config(0, interval=0.03), args=("--record", str(tmp_path / "rec"))
    )
    stream = watch(daemon.url)
    wait_for(lambda: stream.actuator_states().count("STOPPED") >= 2, what="stops")
    # Over a second more, so that the file holds more than one chunk.
    seen = len(stream.of_type("sensor"))
    wait_for(lambda: len(stream.of_type("sensor")) >= seen + 50, what="more readings")
    assert daemon.signal(signal.SIGTERM) == 0
    after = time.time_ns()
    path = one_file(tmp_path / "rec")

    with open(path, "rb") as handle:
        reader = make_reader(handle)
        summary = reader.get_summary()
        assert summary is not None, "a finished file has its summary"
        chunks = summary.chunk_indexes
        assert len(chunks) >= 2, chunks
        assert {c.compression for c in chunks} == {"zstd"}
        assert all(c.compressed_size < c.uncompressed_size for c in chunks)
        assert all(c.message_index_offsets for c in chunks), "each chunk has its message indexes"
        stats = summary.statistics
        assert stats is not None and stats.chunk_count == len(chunks)
        messages = list(reader.iter_messages())
        assert stats.message_count == len(messages)
        topics = {summary.channels[i].topic: n for i, n in stats.channel_message_counts.items()}
        assert topics["/readings/distance_sensor"] > 50 and topics["/events"] > 50
        # The timeline shows the day it was recorded, not 1970.
        assert before <= stats.message_start_time <= stats.message_end_time <= after
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    origin = int(metadata["anse-hw"]["clock_origin_ns"])
    assert before <= origin <= stats.message_start_time
    for _, channel, message in messages:
        assert message.publish_time == message.log_time
        if channel.topic.startswith("/readings/"):  # the acquisition time, mapped once
            arrived = json.loads(message.data)["arrived"]
            assert abs(message.log_time - (origin + arrived * 1e9)) < 2_000, message
    with open(path, "rb") as handle:
        top_level = {type(r).__name__ for r in StreamReader(handle, emit_chunks=True).records}
    assert "Message" not in top_level and "Chunk" in top_level, top_level
    verify = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert verify.returncode == 0, verify.stderr


#: The command, reporting on stderr at the end how many bytes it read (rchar).
READ = (
    "import sys; from anse_hw.app.cli import main; code = main(sys.argv[1:]); "
    "print(next(l for l in open('/proc/self/io') if l.startswith('rchar')), "
    "file=sys.stderr); sys.exit(code)"
)


def bytes_read(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    result = subprocess.run(
        [sys.executable, "-c", READ, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=daemon_env(tmp_path),
    )
    found = re.search(r"rchar: (\d+)", result.stderr)
    assert found, result.stderr
    return result, int(found[1])


def long_indexed_recording(path: Path, seconds: int, per_second: int) -> Path:
    """A recording as the recorder writes them (chunks of about a second,
    zstd, indexed, on the wall clock) of clear readings; each carries a
    random pad so that the file is large compressed too."""
    origin = 1_700_000_000 * 10**9
    rng = random.Random(7)
    with open(path, "wb") as handle:
        writer = Writer(handle, chunk_size=16 * 1024, compression=CompressionType.ZSTD)
        writer.start()
        writer.add_metadata(
            "anse-hw", {"config_yaml": fast_sim_config(0), "clock_origin_ns": str(origin)}
        )
        schema = writer.register_schema("anse-hw.reading", "jsonschema", b"{}")
        channel = writer.register_channel("/readings/distance_sensor", "json", schema)
        for i in range(seconds * per_second):
            arrived = i / per_second
            pad = rng.randbytes(150).hex()
            data = {"sensor": "distance_sensor", "value": 50.0, "arrived": arrived, "pad": pad}
            stamp = origin + round(arrived * 1e9)
            writer.add_message(channel, stamp, json.dumps(data).encode(), stamp)
        writer.add_metadata("anse-hw-end", {"ended": "shutdown"})
        writer.finish()
    return path


def test_a_window_reads_only_the_chunks_it_needs(tmp_path):
    path = long_indexed_recording(tmp_path / "long.mcap", seconds=1000, per_second=50)
    size = path.stat().st_size
    assert size > 5e6
    live = ("--speed", "1000000", "--port", "0")
    window, windowed = bytes_read(
        tmp_path, "replay", str(path), "--from", "500", "--to", "510", *live
    )
    assert window.returncode == 0, window.stderr
    assert "replay finished: 501 readings" in window.stderr
    whole, read_whole = bytes_read(tmp_path, "replay", str(path), "--from", "0", *live)
    assert whole.returncode == 0 and "replay finished: 50000 readings" in whole.stderr
    # The whole file is read at least once (it was twice: a check, then the
    # replay); the window reads its chunks and the summary, a few hundred KB.
    assert read_whole - windowed > size, (read_whole, windowed, size)


def test_a_window_checks_the_chunks_it_reads_and_no_others(run, tmp_path):
    """--from/--to seek through the index: a flipped bit in a chunk the window
    reads is one line naming the file and the chunk; one in a chunk it skips
    is never read; one in the summary section is never a traceback."""
    sample = long_indexed_recording(tmp_path / "long.mcap", seconds=20, per_second=50)
    data = sample.read_bytes()
    with open(sample, "rb") as handle:
        chunks = sorted(
            make_reader(handle).get_summary().chunk_indexes, key=lambda c: c.message_start_time
        )
    first, last = chunks[0], chunks[-1]
    window = ("--from", "0", "--to", "0.2")
    for chunk, read in ((first, True), (last, False)):
        path = tmp_path / "flipped.mcap"
        middle = chunk.chunk_start_offset + chunk.chunk_length - 20  # in its compressed data
        path.write_bytes(flipped(data, middle, 3))
        live = run("replay", path, *window, "--speed", "1000", "--port", "0")
        if read:
            refused(live, 2, str(path), f"offset {chunk.chunk_start_offset}")
        else:
            assert live.returncode == 0 and "replay finished" in live.stderr, live.stderr
    rng = random.Random(8)
    for at in rng.sample(range(data_end(data), len(data)), 20):
        path = tmp_path / "flipped.mcap"
        path.write_bytes(flipped(data, at, rng.randrange(8)))
        one_line_or_fine(run("replay", path, *window, "--speed", "1000", "--port", "0"), path)
        one_line_or_fine(run("replay", path, *window, "--verify"), path)


def test_without_zstandard_the_chunks_are_lz4_and_still_replay(start_daemon, watch, tmp_path):
    """An install without the zstandard module (a module of that name that
    fails to import stands in for it) records lz4 chunks, never nothing."""
    missing = tmp_path / "without-zstd"
    missing.mkdir()
    (missing / "zstandard.py").write_text("raise ImportError('zstandard is not installed')\n")
    daemon = start_daemon(
        fast_sim_config(0, interval=0.03),
        args=("--record", str(tmp_path / "rec")),
        env={"PYTHONPATH": str(missing)},
    )
    stream = watch(daemon.url)
    wait_for(lambda: stream.actuator_states().count("STOPPED") >= 1, what="a stop")
    assert daemon.signal(signal.SIGTERM) == 0
    path = one_file(tmp_path / "rec")
    with open(path, "rb") as handle:
        summary = make_reader(handle).get_summary()
    assert summary is not None
    assert {c.compression for c in summary.chunk_indexes} == {"lz4"}
    verify = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert verify.returncode == 0, verify.stderr
