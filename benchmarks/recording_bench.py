"""What recording costs: CPU and reflex latency at 100 readings/s, with and without.

    python -m benchmarks.recording_bench       # ~1 min, updates BENCHMARKS.md

The reflex harness of benchmarks.run (TFmini on a pty → motor pin on the mock
factory, 100 readings/s, far/close every 100 ms) runs twice in this process:
without recording and with `recording: {dir: <tmp>}`.  CPU is this process's
(the daemon and the pty writer) over the scenario; the difference is the
recorder's.
"""

from __future__ import annotations

import argparse
import resource
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    keep_state_aside()
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
