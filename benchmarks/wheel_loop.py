"""The wheel speed loop's period jitter at 50 Hz, with and without 100
WebSocket clients connected.

    python -m benchmarks.wheel_loop              # 30 s each, updates BENCHMARKS.md
    python -m benchmarks.wheel_loop --quick      # 5 s each, prints only

anse-hw runs in this process (as `benchmarks.run` does) with a simulated
sensor at 100 Hz cruising a drive with encoders (`driver: sim`: simulated
wheels whose encoders count), so the loop does its whole step, encoders,
PID and duties, every period.  The clients run in a separate process and
read every event.  Each step's start is taken from the drive's own record
(`EncodedDrive.steps`, monotonic); jitter is how far each period is from
the nominal 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

from anse_hw import config as configuration
from anse_hw.app.daemon import Daemon
from anse_hw.drivers.encoded_drive import EncodedDrive
from benchmarks.common import Clients, machine, percentile
from benchmarks.markdown import replace_section
from benchmarks.run import Rig, keep_state_aside

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
server: {{host: 127.0.0.1, port: {port}, max_clients: 2000}}
gpio: {{pin_factory: mock}}
sensors:
  - {{name: front, driver: sim, interval: 0.01, profile: constant, value: 80}}
actuators:
  - name: base
    type: drive
    driver: sim
    encoders: {{left: {{a: 5, b: 6, counts_per_rev: 360}}, right: {{a: 19, b: 26,
               counts_per_rev: 360}}, max_rps: 3}}
reflexes:
  - {{name: cruise, sensor: front, above: 30, actuator: base, command: {{linear: 0.5, angular: 0}}}}
  - {{name: guard, sensor: front, below: 15, actuator: base, command: stop}}
"""


class LoopRig(Rig):
    """`benchmarks.run`'s rig serving a drive with encoders; `drive` is
    the daemon's EncodedDrive once it is up."""

    drive: EncodedDrive | None = None

    def _serve_ours(self) -> None:
        daemon = Daemon(
            configuration.parse(CONFIG.format(port=self.port)), pin_factory=self.factory
        )
        self._stop = daemon.request_stop
        self._daemon = daemon
        asyncio.run(daemon.run())

    def the_drive(self) -> EncodedDrive:
        while getattr(self._daemon, "engine", None) is None:
            time.sleep(0.05)
        drive = self._daemon.engine.actuators["base"]
        assert isinstance(drive, EncodedDrive)
        return drive


def scenario(clients: int, seconds: float) -> Callable[[LoopRig], dict]:
    def run(rig: LoopRig) -> dict:
        drive = rig.the_drive()
        swarm = Clients(rig.port, clients, record=0) if clients else None
        if swarm:
            swarm.start()
        time.sleep(1.0)  # the cruise under way, every client connected and reading
        steps: set[float] = set()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(min(5.0, seconds))  # the record holds 20 s of steps
            steps.update(drive.steps)
        summary = swarm.finish()[0] if swarm else {}
        times = sorted(t for t in steps if t >= started)
        periods = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        return {"periods_ms": periods, "clients": summary, "load": os.getloadavg()[0]}

    return run


def row(label: str, result: dict) -> str:
    periods = result["periods_ms"]
    jitter = [abs(p - 1000 * EncodedDrive.PERIOD) for p in periods]
    errors = result["clients"].get("errors", 0)
    return (
        f"| {label} | {len(periods)} | {percentile(periods, 50):.2f} | "
        f"{percentile(jitter, 50):.2f} | {percentile(jitter, 99):.2f} | {max(jitter):.2f} | "
        f"{result['load']:.1f} | {errors} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 s each, print only")
    args = parser.parse_args()
    keep_state_aside()
    seconds = 5.0 if args.quick else 30.0
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for label, clients in (("no clients", 0), ("100 WebSocket clients", 100)):
        rows.append(row(label, LoopRig("anse-hw").serve(scenario(clients, seconds))))
        print(rows[-1], flush=True)
    body = f"""Measured by `python -m benchmarks.wheel_loop` on {when} ({seconds:g} s each,
{machine()}).  A drive with encoders (the sim's wheels, whose encoders count) cruised by
a simulated sensor at 100 Hz; its speed loop runs on its own thread at 50 Hz (20 ms).
Jitter is |period − 20 ms| over every period in the run, from the loop's own record of
when each step began.  The clients are a separate process reading every event (a
`sensor` and a `worldmodel` per reading: 200 events a second to each).  Load is the
machine's 1-minute load average at the end of the run (shared with other work).

| | periods | period p50 ms | jitter p50 ms | jitter p99 ms | jitter max ms | load | client errors |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}"""
    print(body)
    if not args.quick:
        replace_section(ROOT / "BENCHMARKS.md", "Wheel speed loop", body)


if __name__ == "__main__":
    main()
