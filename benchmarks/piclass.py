"""anse-hw on a Pi-sized share of one core (cgroup v1 CPU quota).

    python -m benchmarks.piclass            # writes the "Pi-class" section of BENCHMARKS.md

The daemon's threads (the event loop, the serial reader, the safety monitor)
run in a cgroup limited to a fraction of one core, with a 10 ms period so a
throttled thread waits at most that long; the sensor emulation and the client
process stay outside.  A quota is not a slower CPU: the daemon runs at full
speed in bursts and waits out the rest of each period, so the tail shows the
throttling while the median shows this machine's speed.  As a rough guide a
Raspberry Pi 4 core does a quarter to a third of this machine's core's Python
work, and a Pi Zero 2 W a tenth.

Needs root and the cgroup v1 `cpu` controller at /sys/fs/cgroup/cpu (where a
single thread can be moved); on cgroup v2 only it says so and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import run
from benchmarks.markdown import replace_section
from benchmarks.run import Clients, Rig, deliveries, pace, percentile, stop_latencies

CPU_V1 = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 10_000
CLIENTS = 3


@contextmanager
def confined(share: float | None) -> Iterator[None]:
    """This thread, and every thread it starts from now on, limited to `share`
    of one core (None: no limit)."""
    if share is None:
        yield
        return
    group = CPU_V1 / f"anse-bench-{os.getpid()}"
    group.mkdir(exist_ok=True)
    (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (group / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * share)))
    tid = str(threading.get_native_id())
    (group / "tasks").write_text(tid)
    try:
        yield
    finally:
        (CPU_V1 / "tasks").write_text(tid)
        for task in (group / "tasks").read_text().split():  # threads that outlived the run
            (CPU_V1 / "tasks").write_text(task)
        group.rmdir()


def stream_scenario(hz: float, seconds: float, max_hz: float = 0) -> Callable[[Rig], dict]:
    """Far and close in turn (a tenth of a second each, at least one frame),
    three dashboard clients: every close is a stop to time, every far reading
    a delivery to time."""

    def scenario(rig: Rig) -> dict:
        swarm = Clients(rig.port, CLIENTS, max_hz=max_hz, record=CLIENTS)
        swarm.start()
        per_phase = max(1, round(hz / 10))
        far = iter(range(20, 10_000))
        pace(rig, [next(far) for _ in range(per_phase * 5)], hz)  # the motor starts
        closes: list[float] = []
        writes: dict[float, float] = {}
        for _ in range(int(seconds * hz / (2 * per_phase))):
            values = [next(far) for _ in range(per_phase)]
            writes.update(zip(map(float, values), pace(rig, values, hz), strict=True))
            closes.append(pace(rig, [5] * per_phase, hz)[0])
        time.sleep(1.0)
        summary, arrivals = swarm.finish()
        stops, missed = stop_latencies(closes)
        delivery = deliveries(arrivals, writes)
        return {
            "stops": stops,
            "missed": missed,
            "closes": len(closes),
            "delivery": delivery,
            "expected": len(writes) * CLIENTS,
            "errors": summary["errors"],
        }

    return scenario


def row(share: float | None, hz: float, seconds: float, max_hz: float = 0) -> str:
    rig = Rig("anse-hw")
    with confined(share):
        result = rig.serve(stream_scenario(hz, seconds, max_hz))
    sys.setswitchinterval(run.DEFAULT_SWITCH_INTERVAL)
    stops, delivery = result["stops"], result["delivery"]
    label = "whole core" if share is None else f"{share:.0%} of a core"
    if max_hz:
        label += f", clients at max_hz={max_hz:g}"
    lost = f", {result['missed']} of {result['closes']} stops missing" if result["missed"] else ""
    return (
        f"| {label} | {hz:g} | {percentile(stops, 50):.2f} | {percentile(stops, 99):.2f} | "
        f"{max(stops):.2f}{lost} | {percentile(delivery, 50):.1f} | "
        f"{percentile(delivery, 99):.1f} | {len(delivery)} of {result['expected']} |"
    )


def section(rows: list[str], command: str, started: str) -> str:
    about = __doc__.split("\n\n")[1].replace("\n", " ")
    return f"""Measured by `{command}` on {started}.  {about}

Far and close readings in turn, three dashboard clients reading everything.
Stop: the first close frame written → the motor's forward pin at 0.  Delivery:
a far reading written → its `sensor` event received by a client (all three
clients record; "received" counts those events).

| CPU | readings/s | stop p50 ms | p99 ms | max ms | delivery p50 ms | p99 ms | received |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--output", default=str(run.ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    if os.geteuid() != 0 or not (CPU_V1 / "cpu.cfs_quota_us").exists():
        sys.exit("needs root and the cgroup v1 cpu controller at /sys/fs/cgroup/cpu")
    run.keep_state_aside()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("anse_hw").setLevel(logging.ERROR)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for share in (None, 0.25, 0.10):
        for hz in (10, 100):
            rows.append(row(share, hz, args.seconds))
            print(rows[-1], flush=True)
    rows.append(row(0.10, 100, args.seconds, max_hz=10))  # what to do on a Pi Zero
    print(rows[-1], flush=True)
    replace_section(
        Path(args.output), "Pi-class", section(rows, "python -m benchmarks.piclass", started)
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
