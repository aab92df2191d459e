"""Faithful fakes: a distance sensor with scripted profiles and a motor.

They run on their own threads and push samples exactly like the real drivers,
so `anse-hw --sim` exercises the same engine, reflexes and fail-safes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from drivers.base import (
    MOVING,
    STOPPED,
    ActuatorDriver,
    DriverError,
    Option,
    Sample,
    SensorDriver,
    one_of,
    unit_interval,
)


def seed_pattern() -> Iterator[float]:
    """The seed document's sweep, 50 → 5 → 50 cm over 16 readings, forever."""
    i = 0
    while True:
        step = i % 16
        if step < 8:
            yield max(5.0, 50 - step * 5.5)
        else:
            yield min(50.0, 5 + (step - 8) * 5.5)
        i += 1


def _non_negative(value: float | int) -> str | None:
    return None if value >= 0 else "must not be negative"


def _script_values(values: list[Any]) -> str | None:
    if not values:
        return "must list at least one value"
    bad = [
        v
        for v in values
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float))
    ]
    return f"entries must be numbers (cm) or null, got {bad[0]!r}" if bad else None


class SimDistanceSensor(SensorDriver):
    """A distance sensor that plays a profile: seed, constant, script or trace."""

    DEFAULT_INTERVAL = 1.5
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "profile",
            str,
            "seed",
            "seed | constant | script | trace",
            one_of("seed", "constant", "script", "trace"),
        ),
        Option("value", (int, float), 50.0, "cm, for profile: constant", _non_negative),
        Option(
            "values", list, None, "cm list for profile: script (null = no reading)", _script_values
        ),
        Option("trace", str, None, "file with one reading per line, for profile: trace"),
        Option("repeat", bool, True, "script/trace: start again at the end (else go silent)"),
        Option(
            "noise",
            (int, float),
            0.0,
            "standard deviation in cm added to each reading",
            _non_negative,
        ),
        Option(
            "dropout", (int, float), 0.0, "probability that a reading is missing", unit_interval
        ),
        Option("random_seed", int, None, "seed for noise and dropouts (repeatable runs)"),
        Option(
            "fail_after",
            int,
            None,
            "fault injection: the driver crashes after this many readings",
            _non_negative,
        ),
    )

    @classmethod
    def problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        needs = {"script": "values", "trace": "trace"}.get(options["profile"])
        if needs and options[needs] is None:
            return [(needs, f"required with profile: {options['profile']}")]
        return []

    def __init__(self, name: str, interval: float, max_age: float = 0.5, **options: Any) -> None:
        super().__init__(name, interval, max_age)
        self.options = options
        self._values = self._profile(options)
        self._rng = random.Random(options["random_seed"])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _profile(options: dict[str, Any]) -> Iterator[float | None]:
        profile = options["profile"]
        if profile == "seed":
            return seed_pattern()
        if profile == "constant":
            return iter(lambda: float(options["value"]), None)
        if profile == "script":
            return _replay(list(options["values"]), options["repeat"])
        return _replay(_read_trace(Path(options["trace"])), options["repeat"])

    def describe(self) -> str:
        return f"simulated ({self.options['profile']})"

    def start(self, on_sample, on_fault, on_crash) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(on_sample, on_crash), name=f"sim-{self.name}", daemon=True
        )
        self._thread.start()

    def _run(self, on_sample: Callable[[Sample], None], on_crash) -> None:
        try:
            deadline = time.monotonic()
            for count, value in enumerate(self._values):
                if self.options["fail_after"] is not None and count >= self.options["fail_after"]:
                    raise RuntimeError(f"simulated driver fault after {count} readings")
                on_sample(self._measure(value))
                deadline += self.interval
                if self._stop.wait(max(0.0, deadline - time.monotonic())):
                    return
            self._stop.wait()  # a script that does not repeat goes silent
        except Exception as exc:  # the daemon stops the motors and exits 1
            on_crash(exc)

    def _measure(self, value: float | None) -> Sample:
        if value is None or self._rng.random() < self.options["dropout"]:
            return Sample.none("simulated dropout")
        noise = self.options["noise"]
        cm = value + self._rng.gauss(0, noise) if noise else value
        return Sample(max(0.0, cm))

    def close(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


def _replay(values: list[float | None], repeat: bool) -> Iterator[float | None]:
    while True:
        yield from values
        if not repeat:
            return


def _read_trace(path: Path) -> list[float | None]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DriverError(f"cannot read trace file {path}: {exc.strerror}") from exc
    values: list[float | None] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text in ("", "-", "none", "null", "nan"):
            values.append(None)
            continue
        try:
            values.append(float(text))
        except ValueError:
            raise DriverError(f"{path}:{number}: expected a distance in cm, got {text!r}") from None
    if not values:
        raise DriverError(f"trace file {path} has no readings")
    return values


class SimMotor(ActuatorDriver):
    """A motor with no pins: it is whatever it was last commanded to be."""

    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "stall_after",
            int,
            None,
            "fault injection: the command after this many hangs forever "
            "(a wedged driver, for testing the systemd watchdog)",
            _non_negative,
        ),
    )

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name)
        self._state = STOPPED
        self._commands = 0
        self._stall_after = options.get("stall_after")

    @property
    def state(self) -> str:
        return self._state

    def _command(self, state: str) -> None:
        if self._stall_after is not None and self._commands >= self._stall_after:
            threading.Event().wait()
        self._commands += 1
        self._state = state

    def move(self) -> None:
        self._command(MOVING)

    def stop(self) -> None:
        self._command(STOPPED)

    def close(self) -> None:
        self._state = STOPPED

    def describe(self) -> str:
        return "simulated motor"
