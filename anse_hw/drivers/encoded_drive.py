"""A drive with wheel encoders: measured wheel speed, closed-loop speed and
stall detection (docs/safety.md, W1).

It wraps the drive that owns the H-bridge (GPIO, or the sim's) and looks
like any drive to the engine.  A commanded duty goes onto the wheels at once
(the feed-forward), and a control thread of its own, every PERIOD, reads the
encoders and trims each wheel's duty with its speed loop (anse_hw.wheels).
That thread is the sensor side of the engine: it never waits for the event
loop, and the engine never waits for it (a stop goes straight to the
H-bridge under this driver's lock, so the loop cannot put a duty back).

A wheel commanded but not turning for `stall.after` seconds, or lost
encoders, is a fault: the driver stops the wheels itself, then tells the
engine, and refuses every move until the engine clears it on a reset.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from anse_hw.drivers.encoders import Encoders
from anse_hw.drivers.threaded import Worker
from anse_hw.readings import DriveDriver
from anse_hw.wheels import Gains, SpeedLoop, StallDetector

__all__ = ["EncodedDrive"]

log = logging.getLogger("anse_hw.drivers")

SIDES = ("left", "right")


class EncodedDrive(DriveDriver):
    #: The control period, s: 50 Hz.
    PERIOD = 0.02
    #: How often measured wheel speeds go on the stream while they change, s.
    REPORT_EVERY = 0.2

    def __init__(
        self,
        inner: DriveDriver,
        encoders: Encoders,
        counts_per_rev: tuple[int, int],
        max_rps: float,
        stall_after: float,
    ) -> None:
        super().__init__(inner.name, inner.safe_state)
        self.inner = inner
        self.encoders = encoders
        self.stall_after = stall_after
        self.loops = tuple(SpeedLoop(Gains(max_rps), c) for c in counts_per_rev)
        self.stalls = tuple(StallDetector(stall_after) for _ in counts_per_rev)
        #: Why the wheels are held stopped until a reset (None: they are not).
        self.fault: str | None = None
        #: Why the encoders cannot be read now (a lost serial port), or None.
        self.lost: str | None = None
        #: Why the speed loop is dead (an exception on its thread), or None.
        self.crashed: str | None = None
        #: When each control step began (monotonic s), the last few: the benchmark's.
        self.steps: deque[float] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._worker = Worker()
        self._on_fault: Callable[[str], None] = lambda text: None
        self._on_measured: Callable[[dict[str, Any]], None] = lambda data: None
        self._reported: tuple[float, ...] | None = None
        self._last_report = -math.inf

    def describe(self) -> str:
        return f"{self.inner.describe()}, {self.encoders.describe()}, closed-loop speed"

    def start(
        self, on_fault: Callable[[str], None], on_measured: Callable[[dict[str, Any]], None]
    ) -> None:
        self._on_fault, self._on_measured = on_fault, on_measured
        self.encoders.start(self._encoder_fault)
        self._worker.start(f"drive-{self.name}", self._run)

    def set_wheels(self, left: float, right: float) -> None:
        with self._lock:
            if self.fault is not None:
                self.inner.stop()
                return
            self.wheels = (left, right)
            self.inner.set_wheels(left, right)

    def stop(self) -> None:
        with self._lock:
            self._halt()

    def reset_fault(self) -> str | None:
        with self._lock:
            self.fault = self.lost or self.crashed
            return self.fault

    def close(self) -> None:
        self._worker.stop()
        self.encoders.close()
        self.inner.close()
        self.wheels = (0.0, 0.0)

    def _halt(self) -> None:
        """Both wheels stopped and both loops reset.  Under the lock."""
        self.wheels = (0.0, 0.0)
        self.inner.stop()
        for loop in self.loops:
            loop.reset()

    def _run(self) -> None:
        """The loop; if it dies, the base stops for good: a drive whose
        stalls nobody watches must not move."""
        try:
            self._loop()
        except Exception as exc:
            log.exception("%s: the speed loop failed", self.name)
            with self._lock:
                self.crashed = self.fault = f"the speed loop failed ({exc!r}); restart anse-hw"
                self._halt()
            self._on_fault(self.crashed)

    def _loop(self) -> None:
        last = due = time.monotonic()
        while not self._worker.stopping.wait(max(0.0, due - time.monotonic())):
            now = time.monotonic()
            self._step(now, now - last)
            last = now
            due += self.PERIOD
            if due < now:  # late by more than a period: no burst to catch up
                due = now + self.PERIOD

    def _step(self, now: float, dt: float) -> None:
        self.steps.append(now)
        counts = self.encoders.counts()
        with self._lock:
            fault = None if self.fault is not None else self._stall(now, counts)
            if fault is not None:
                self.fault = fault
                self._halt()
            duties = [
                loop.step(now, dt, duty, count)
                for loop, duty, count in zip(self.loops, self.wheels, counts, strict=True)
            ]
            if self.wheels != (0.0, 0.0):
                self.inner.set_wheels(*duties)
        if fault is not None:
            log.error("%s: %s: stopped until a reset", self.name, fault)
            self._on_fault(fault)
        self._report(now)

    def _stall(self, now: float, counts: tuple[int, int]) -> str | None:
        """What stalled, if a wheel has.  Under the lock."""
        for side, stall, duty, count in zip(SIDES, self.stalls, self.wheels, counts, strict=True):
            if stall.update(now, duty, count):
                return (
                    f"{side} wheel stalled: driven at {abs(duty):.2f} with no encoder motion "
                    f"for {self.stall_after:g} s"
                )
        return None

    def _report(self, now: float) -> None:
        """Measured speeds (rev/s) for the stream, when they have changed."""
        if now - self._last_report < self.REPORT_EVERY:
            return
        speeds = tuple(round(loop.speed, 2) + 0.0 for loop in self.loops)
        if speeds == self._reported:
            return
        self._reported, self._last_report = speeds, now
        self._on_measured({"wheel_speeds": dict(zip(SIDES, speeds, strict=True))})

    def _encoder_fault(self, text: str, active: bool) -> None:
        with self._lock:
            self.lost = text if active else None
            for loop in self.loops:
                loop.meter.reset()  # a reopened counter may have started again at 0
            if not active:
                log.info("%s: %s", self.name, text)
                return
            self.fault = text
            self._halt()
        log.error("%s: %s: stopped until a reset", self.name, text)
        self._on_fault(text)
