"""A frame writer in a process of its own, so its schedule is its own.

A writer thread inside the benchmark process shares the GIL with the
in-process daemon fanning out to hundreds of clients; under that load it
wakes late, and a reflex that needs two readings (a median of 3) is then
timed from a first frame whose successor came late — the writer's delay,
not the reflex's.  This process holds only the pty's master side:

    python -m benchmarks.pacer FD < values.json > written.json

reads one JSON list of distances (cm), writes one TFmini frame per value at
`common.SENSOR_HZ` on a fixed schedule, and prints the CLOCK_MONOTONIC time
each frame was written (the same clock the mock pins note stops on).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from anse_hw.drivers.protocols import tfmini_frame
from benchmarks.common import pace


class _Master:
    """The pty's master side as `common.Sensor`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, cm: int) -> float:
        now = time.monotonic()
        os.write(self.fd, tfmini_frame(cm))
        return now


def paced_elsewhere(master: int, values: list[int]) -> list[float]:
    """Write `values` into `master` from a separate process; their write times."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.pacer", str(master)],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        pass_fds=(master,),
        check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    master = _Master(int(sys.argv[1]))
    print(json.dumps(pace(master, json.load(sys.stdin))))


if __name__ == "__main__":
    main()
