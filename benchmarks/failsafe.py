"""How soon a silent sensor stops the motor, and what an unplugged port costs.

    python -m benchmarks.failsafe             # 30 cycles, updates BENCHMARKS.md
    python -m benchmarks.failsafe --cycles 5 --no-write   # a quick look

The tests check that these things happen (tests/test_failsafe.py, S2 and
S7); how fast, and at what CPU, is measured here, where a loaded machine
makes a slow figure instead of a failed test.

`anse-hw` runs as a process with a TFmini on a pseudo-terminal (max_age
0.3 s) and an L298N motor on the mock pin factory.  Each cycle: far readings
at 50 Hz until the motor moves, then silence until it stops; the world model
sent with the stop gives the age of the last reading by the daemon's own
clock.  Lateness is that age minus max_age: the monitor's tick, plus
whatever the machine added.  Then the port is unplugged and the daemon's
CPU measured while it waits for the port to come back, beside the same
window with the port plugged in and silent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from anse_hw.drivers.protocols import tfmini_frame
from benchmarks.markdown import replace_section
from tests.conftest import DaemonProcess, StreamWatcher, hardware_config, wait_for
from tests.serialdev import PtyDevice

ROOT = Path(__file__).resolve().parent.parent
MAX_AGE = 0.3
CPU_WINDOW = 5.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_percent(pid: int) -> float:
    """The daemon's CPU over CPU_WINDOW seconds, in % of one core."""
    before, began = cpu_seconds(pid), time.monotonic()
    time.sleep(CPU_WINDOW)
    return (cpu_seconds(pid) - before) / (time.monotonic() - began) * 100


def silence_stop_age(device: PtyDevice, stream: StreamWatcher) -> float:
    """One cycle: far readings until MOVING, then silence; the last reading's
    age (ms) in the world model that reports the stop."""
    mark = len(stream.events)
    feeding = threading.Event()
    feeding.set()

    def feed() -> None:
        while feeding.is_set():
            device.write(tfmini_frame(80))
            time.sleep(0.02)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        stream.wait_state("MOVING", after=mark, timeout=30)
    finally:
        feeding.clear()
        feeder.join()
    mark = len(stream.events)
    stop = stream.wait_state("STOPPED", after=mark, timeout=30)

    def world_after_stop() -> dict | None:
        return next(
            (e["data"] for e in stream.of_type("worldmodel") if e["seq"] > stop["seq"]), None
        )

    return wait_for(world_after_stop, 30, "the world model")["sensors"]["lidar"]["age_ms"]


def measure(cycles: int) -> tuple[list[float], float, float]:
    work = Path(tempfile.mkdtemp(prefix="anse-hw-failsafe-"))
    device = PtyDevice(work / "ttyLIDAR")
    config = work / "robot.yaml"
    config.write_text(hardware_config(0, device.path, work / "pins.json", max_age=MAX_AGE))
    daemon = DaemonProcess(["--config", str(config)], None, work / "daemon.log").wait_listening()
    stream = StreamWatcher(daemon.url)
    try:
        ages = [silence_stop_age(device, stream) for _ in range(cycles)]
        plugged = cpu_percent(daemon.proc.pid)
        device.unplug()
        wait_for(lambda: "lost" in daemon.log(), 30, "the loss to be noticed")
        unplugged = cpu_percent(daemon.proc.pid)
        return ages, plugged, unplugged
    finally:
        stream.close()
        daemon.stop()
        device.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    ages, plugged, unplugged = measure(args.cycles)
    late = sorted(age - MAX_AGE * 1000 for age in ages)
    p50 = statistics.median(late)
    p99 = late[min(len(late) - 1, round(0.99 * (len(late) - 1)))]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"""Measured by `python -m benchmarks.failsafe` on {when} ({args.cycles} cycles,
a TFmini on a pseudo-terminal with max_age {MAX_AGE:g} s, the motor on the mock pin
factory).  Lateness: the age of the last reading when the silent sensor stopped
the motor, minus max_age, by the daemon's own clock.  CPU: the daemon over
{CPU_WINDOW:g} s, in % of one core.

| | p50 ms | p99 ms | max ms |
|---|---|---|---|
| silent sensor → stop, after max_age | {p50:.0f} | {p99:.0f} | {late[-1]:.0f} |

| serial port | daemon CPU % |
|---|---|
| plugged in, silent | {plugged:.1f} |
| unplugged, reopening with back-off | {unplugged:.1f} |"""
    print(body)
    print(json.dumps({"late_p50_ms": p50, "late_p99_ms": p99, "cpu_unplugged": unplugged}))
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", "Failsafe", body)


if __name__ == "__main__":
    main()
