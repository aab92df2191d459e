"""How long from `POST /api/estop` to the motor pins at 0.

    python -m benchmarks.estop_latency            # 50 cycles, updates BENCHMARKS.md

`anse-hw` runs as a process with a TFmini on a pseudo-terminal and an L298N
motor on the mock pin factory.  Each cycle: far readings until the motor
moves, then the E-stop is timed from the request to the answer.  The daemon
answers only after the engine has driven the pins (and the latch is on
disk), so the round trip is an upper bound on request → pin at 0; the pin
state is checked after every answer.  Then a reset, for the next cycle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from anse_hw.drivers.pins import read_pin_states
from anse_hw.drivers.protocols import tfmini_frame
from benchmarks.markdown import replace_section
from tests.conftest import free_port, hardware_config, wait_for
from tests.serialdev import PtyDevice

ROOT = Path(__file__).resolve().parent.parent


def post(port: int, path: str, token: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def measure(cycles: int) -> list[float]:
    work = Path(tempfile.mkdtemp())
    device = PtyDevice(work / "ttyLIDAR")
    pins = work / "pins.json"
    port = free_port()
    config = work / "robot.yaml"
    config.write_text(hardware_config(port, device.path, pins, max_age=5))
    env = {**os.environ, "STATE_DIRECTORY": str(work / "state")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "anse_hw", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        found = wait_for(lambda: list((work / "state").glob("*/control-token")), what="the daemon")
        token = found[0].read_text().strip()
        level = lambda: read_pin_states(pins).get("GPIO17", {}).get("state")  # noqa: E731
        times = []
        for _ in range(cycles):
            while level() != 0.6:
                device.write(tfmini_frame(80))
                time.sleep(0.01)
            times.append(post(port, "/api/estop", token))
            if level() != 0.0:
                raise AssertionError("answered before the pin was at 0")
            post(port, "/api/reset", token)
        return times
    finally:
        daemon.terminate()
        daemon.wait()
        device.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    times = sorted(measure(args.cycles))
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"""Measured by `python -m benchmarks.estop_latency` on {when}
({args.cycles} cycles, loopback, the mock pin factory writing its state file on every
change).  `POST /api/estop` with a bearer token → the answer, which comes after the
engine drove every pin to its safe state and the latch was written (fsync) to disk;
the pin was at 0 after every answer.

| | p50 ms | p99 ms | max ms |
|---|---|---|---|
| E-stop request → answer (pins at 0 before it) | {p50:.1f} | {p99:.1f} | {times[-1]:.1f} |"""
    print(body)
    print(json.dumps({"p50_ms": p50, "p99_ms": p99}))
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", "Operator E-stop", body)


if __name__ == "__main__":
    main()
