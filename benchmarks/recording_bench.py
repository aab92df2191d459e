"""What recording costs: CPU and reflex latency at 100 readings/s, with and without;
and a recording's size per hour and CPU for pi-robot.yaml in --sim, as
recorded now (chunked, compressed) and by an earlier revision.

    python -m benchmarks.recording_bench                    # ~1 min, updates BENCHMARKS.md
    python -m benchmarks.recording_bench --pi-robot fc1e04d # ~2 min: now against that revision

The reflex harness of benchmarks.run (TFmini on a pty → motor pin on the mock
factory, 100 readings/s, far/close every 100 ms) runs twice in this process:
without recording and with `recording: {dir: <tmp>}`.  CPU is this process's
(the daemon and the pty writer) over the scenario; the difference is the
recorder's.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.markdown import replace_section
from benchmarks.run import Rig, fmt_latency, keep_state_aside, reflex_scenario

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(extra: str, cycles: int) -> tuple[tuple[str, str, str], float]:
    base = reflex_scenario(0, 0, cycles)
    spent: dict[str, float] = {}

    def scenario(rig: Rig) -> dict:
        cpu, began = cpu_seconds(), time.monotonic()
        result = base(rig)
        spent["cpu"] = (cpu_seconds() - cpu) / (time.monotonic() - began) * 100
        return result

    result = Rig("anse-hw", extra).serve(scenario)
    return fmt_latency(result), spent["cpu"]


def recording_robot(source: Path, folder: Path) -> subprocess.Popen:
    """`anse-hw --sim --config pi-robot.yaml --record FOLDER`, from the
    anse_hw in `source`."""
    config = ROOT / "anse_hw" / "examples" / "pi-robot.yaml"
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONDONTWRITEBYTECODE": "1"}
    args = ["--sim", "--config", str(config), "--port", "0", "--record", str(folder)]
    return subprocess.Popen(
        [sys.executable, "-m", "anse_hw", *args],
        cwd=source,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pi_robot(source: Path, seconds: float) -> tuple[float, float, int]:
    """pi-robot.yaml recorded for `seconds`: (MB per hour, daemon CPU % of
    one core, chunks)."""
    folder = Path(tempfile.mkdtemp(prefix="anse-bench-pirobot-"))
    daemon = recording_robot(source, folder)
    try:
        time.sleep(seconds)  # a benchmark's fixed run, not a synchronisation
        utime, stime = (int(v) for v in Path(f"/proc/{daemon.pid}/stat").read_text().split()[13:15])
        cpu = (utime + stime) / os.sysconf("SC_CLK_TCK") / seconds * 100
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    size = sum(f.stat().st_size for f in folder.glob("*.mcap"))
    from mcap.reader import make_reader

    chunks = 0
    for path in folder.glob("*.mcap"):
        with open(path, "rb") as handle:
            summary = make_reader(handle).get_summary()
            chunks += len(summary.chunk_indexes) if summary else 0
    return size / seconds * 3600 / 1e6, cpu, chunks


def crash_loss(runs: int) -> list[float]:
    """Seconds of messages a SIGKILL loses: from the kill to the last message
    the file holds (its log_time is the wall clock), over `runs` kills at
    random moments 3 to 8 s in."""
    from mcap.records import Message
    from mcap.stream_reader import StreamReader

    rng = random.Random(1)
    lost = []
    for _ in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="anse-bench-crash-"))
        daemon = recording_robot(ROOT, folder)
        time.sleep(rng.uniform(3, 8))  # a random moment, not a synchronisation
        daemon.kill()
        killed = time.time_ns()
        daemon.wait()
        last = 0
        (path,) = folder.glob("*.mcap")
        with open(path, "rb") as handle:
            try:
                for record in StreamReader(handle).records:
                    if isinstance(record, Message):
                        last = max(last, record.log_time)
            except Exception:  # the cut: what is before it is what survived
                pass
        lost.append((killed - last) / 1e9)
    return lost


def checkout(revision: str) -> Path:
    """The anse_hw package of `revision` in a temporary directory (git
    archive: the repository and its worktrees are left alone)."""
    target = Path(tempfile.mkdtemp(prefix="anse-bench-rev-"))
    tar = subprocess.run(
        ["git", "archive", revision, "anse_hw"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(target, filter="data")
    return target


def pi_robot_section(revision: str, seconds: float) -> str:
    rows = []
    for label, source in ((f"`{revision}`", checkout(revision)), ("this version", ROOT)):
        per_hour, cpu, chunks = pi_robot(source, seconds)
        rows.append(f"| {label} | {per_hour:.1f} MB | {cpu:.1f} % | {chunks} |")
    lost = crash_loss(10)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"""Measured by `python -m benchmarks.recording_bench --pi-robot {revision}` on
{when}: `anse-hw --sim --config anse_hw/examples/pi-robot.yaml --record DIR`
for {seconds:g} s from each revision, the size of its files scaled to an hour,
and the daemon's own CPU (user + system) as % of one core.

| recorded by | size per hour | daemon CPU | chunks |
|---|---|---|---|
{chr(10).join(rows)}

A crash (SIGKILL at a random moment, {len(lost)} times, this version): the file
ends {min(lost):.2f} s to {max(lost):.2f} s (mean {sum(lost) / len(lost):.2f} s) before the kill."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--pi-robot", metavar="REV", help="measure pi-robot.yaml against revision REV instead"
    )
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    keep_state_aside()
    if args.pi_robot:
        body = pi_robot_section(args.pi_robot, args.seconds)
        print(body)
        if not args.no_write:
            replace_section(ROOT / "BENCHMARKS.md", "Recording pi-robot.yaml", body)
        return
    folder = tempfile.mkdtemp(prefix="anse-bench-rec-")
    rows = []
    for label, extra in (("off", ""), ("on", f"recording: {{dir: {folder}}}")):
        (p50, p99, worst), cpu = measure(extra, args.cycles)
        rows.append(f"| {label} | {cpu:.1f} % | {p50} | {p99} | {worst} |")
    size = sum(f.stat().st_size for f in Path(folder).glob("*.mcap"))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"""Measured by `python -m benchmarks.recording_bench` on {when}: the reflex
harness at 100 readings/s ({args.cycles} stops, no clients), without and with
`recording:`.  CPU is the whole process (daemon and the pty writer) as % of one
core; the recording wrote {size / 1e6:.1f} MB for the run.

| recording | CPU | reflex p50 ms | p99 ms | max ms |
|---|---|---|---|---|
{chr(10).join(rows)}"""
    print(body)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", "Recording", body)


if __name__ == "__main__":
    main()
