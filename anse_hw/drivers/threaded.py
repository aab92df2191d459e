"""The drivers' own threads: started once, stopped and joined on close.

Every sensor that measures on a thread of its own (the sim, a GPIO input's
level poll, a sysfs file's poll) and every shared serial port starts and
stops its thread the same way, here: a crash on the thread is the daemon's
to handle (on_crash), unless the driver is closing anyway; and close()
never joins the thread it runs on (a driver closed from its own callback
would wait for itself).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from anse_hw.readings import Sample, SensorDriver

__all__ = ["ThreadedSensor", "Worker"]

#: How long close() waits for a thread; a DS18B20 read in the kernel takes
#: up to 750 ms and cannot be interrupted.
JOIN_TIMEOUT = 2.0


class Worker:
    """One thread and the event that tells it to stop."""

    def __init__(self) -> None:
        #: Set by `stop`; the thread's loop waits on it between steps.
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self, name: str, target: Callable[..., None], *args: Any) -> None:
        self._thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Tell the thread to stop and wait for it (never from the thread itself)."""
        self.stopping.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=JOIN_TIMEOUT)


class ThreadedSensor(SensorDriver):
    """A sensor whose `measure` loop runs on a thread of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker = Worker()

    @property
    def stopping(self) -> threading.Event:
        """Set when the sensor closes: `measure` waits on it between readings."""
        return self.worker.stopping

    @abstractmethod
    def measure(
        self, on_sample: Callable[[Sample], None], on_fault: Callable[[str, bool], None]
    ) -> None:
        """Measure until `stopping` is set."""

    def start(self, on_sample, on_fault, on_crash) -> None:
        self.worker.start(f"{self.DRIVER}-{self.name}", self._run, on_sample, on_fault, on_crash)

    def _run(self, on_sample, on_fault, on_crash) -> None:
        try:
            self.measure(on_sample, on_fault)
        except Exception as exc:  # the daemon stops the motors and exits 1
            if not self.stopping.is_set():
                on_crash(exc)

    def close(self) -> None:
        self.worker.stop()
