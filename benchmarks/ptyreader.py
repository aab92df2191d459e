"""The floor under a stop: a pseudo-terminal read by a SCHED_FIFO thread, no daemon.

    python -m benchmarks.ptyreader /dev/pts/N     # run by benchmarks.piclass

Reads the device as the daemon's serial thread does (raw, at SCHED_FIFO
priority 10 where permitted) and prints, for every read, when it returned
(CLOCK_MONOTONIC) and how many bytes it got, until the device hangs up.
What a frame takes to get here is what no daemon on the same core can beat:
the kernel moving the bytes through the pseudo-terminal (a SCHED_OTHER
kworker) and waking the reader.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

PRIORITY = 10


def main(device: str) -> None:
    # Where not permitted, the figures say what an ordinary thread gets.
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    fd = os.open(device, os.O_RDONLY | os.O_NOCTTY)
    print("ready", flush=True)
    reads = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the harness closed its side
            break
        if not data:
            break
        reads.append(f"{time.monotonic()!r} {len(data)}")
    sys.stdout.write("\n".join(reads) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
