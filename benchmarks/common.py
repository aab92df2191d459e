"""What the harnesses share that does not depend on how the daemon runs.

benchmarks.run serves anse-hw in its own process; benchmarks.piclass runs it
as a separate, confined process.  Both pace frames into a pseudo-terminal,
watch the motor's forward pin, and read the stream with the client process
(benchmarks/clients.py); this module imports nothing of anse-hw, so a
harness that talks to the daemon only over its public surfaces stays that way.
"""

from __future__ import annotations

import array
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
SENSOR_HZ = 100


class Sensor(Protocol):
    """Anything that writes one distance frame and says when."""

    def write(self, cm: int) -> float:
        """Write a frame for `cm`; the CLOCK_MONOTONIC time just before."""
        ...


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def pace(sensor: Sensor, values: list[int], hz: float = SENSOR_HZ) -> list[float]:
    """Write one frame per value at `hz`, on a fixed schedule; the write times."""
    period = 1 / hz
    deadline = time.monotonic()
    written = []
    for cm in values:
        written.append(sensor.write(cm))
        deadline += period
        time.sleep(max(0.0, deadline - time.monotonic()))
    return written


def first_stops(closes: list[float], stops: list[float]) -> list[float | None]:
    """For each first close frame written: when the forward pin fell to 0
    (`stops`, on CLOCK_MONOTONIC) before the next one was written, or None."""
    ends = [*closes[1:], float("inf")]
    return [
        next((t for t in stops if written <= t < end), None)
        for written, end in zip(closes, ends, strict=True)
    ]


def stop_latencies(closes: list[float], stops: list[float]) -> tuple[list[float], int]:
    """ms from each first close frame written to its stop; and how many
    never got one."""
    pairs = zip(closes, first_stops(closes, stops), strict=True)
    latencies = [(stop - written) * 1000 for written, stop in pairs if stop is not None]
    return latencies, len(closes) - len(latencies)


def deliveries(arrivals: array.array, writes: dict[float, float]) -> list[float]:
    """ms from each written value to its `sensor` event at a client (the
    client process records (value, arrival) pairs)."""
    return [
        (arrivals[i + 1] - writes[arrivals[i]]) * 1000
        for i in range(0, len(arrivals), 2)
        if arrivals[i] in writes
    ]


class Clients:
    """The client process: `count` readers plus `stalled` clients that never read."""

    def __init__(
        self, port: int, count: int, stalled: int = 0, max_hz: float = 0, record: int = 100
    ) -> None:
        handle, self.out = tempfile.mkstemp(suffix=".bin")
        os.close(handle)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.clients",
                "--url",
                f"ws://127.0.0.1:{port}",
                "--count",
                str(count),
                "--stalled",
                str(stalled),
                "--max-hz",
                str(max_hz),
                "--record",
                str(record),
                "--out",
                self.out,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = json.loads(self.proc.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise RuntimeError("the client process did not come up")

    def start(self) -> None:
        self.proc.stdin.write("start\n")
        self.proc.stdin.flush()

    def finish(self) -> tuple[dict, array.array]:
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        summary = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=60)
        arrivals = array.array("d")
        with open(self.out, "rb") as handle:
            arrivals.frombytes(handle.read())
        os.unlink(self.out)
        return summary, arrivals


def machine() -> str:
    """The CPU, kernel and Python the figures were measured on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )
