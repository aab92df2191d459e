"""Real-time priority for the reflex arc's threads, where the system allows it.

The reflex arc runs on the sensor threads; the fan-out runs on the event-loop
thread.  When hundreds of clients keep the event loop busy, an ordinary
sensor thread can wait several milliseconds for a CPU after its read returns.
SCHED_FIFO threads preempt ordinary ones at once.  The daemon raises its
main thread to SCHED_FIFO while it creates the sensor and monitor threads
(they inherit the policy), then drops the main thread back before the event
loop gets busy.

Allowed for root, with CAP_SYS_NICE, or with an RLIMIT_RTPRIO of at least
PRIORITY (the systemd unit sets LimitRTPRIO).  Everywhere else — a laptop,
macOS, a container — it quietly stays as it was.
"""

from __future__ import annotations

import os

#: Low for a real-time priority: below the kernel's IRQ threads (50).
PRIORITY = 10


def enter() -> bool:
    """Switch the calling thread to SCHED_FIFO; False where not permitted."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except (OSError, AttributeError):
        return False
    return True


def leave() -> None:
    """Return the calling thread to the ordinary scheduler."""
    if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(0) == os.SCHED_FIFO:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
