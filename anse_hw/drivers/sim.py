"""Faithful fakes: a sensor of any kind with scripted profiles, and an actuator.

They run on their own threads and push samples exactly like the real drivers,
so `anse-hw --sim` exercises the same engine, reflexes and fail-safes.  Values
are in the sensor kind's unit; a binary sim plays 1 (active) and 0.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from anse_hw import files
from anse_hw.drivers.threaded import ThreadedSensor
from anse_hw.errors import DriverError
from anse_hw.kinds import ACTUATOR_KINDS, SENSOR_KINDS
from anse_hw.options import Option, a_path, in_range, one_of, unit_interval
from anse_hw.readings import ActuatorDriver, DriveDriver, Sample

#: A trace with this suffix is an anse-hw recording, which the daemon loads
#: and hands over as `recorded` values (the sim never reads that format).
RECORDING_SUFFIX = ".mcap"
#: A trace file of one reading per line: 1 MiB is some 150 000 readings,
#: hours of any sensor.  A bigger file is not a trace.
MAX_TRACE_BYTES = 1024 * 1024


def sweep(start: float, end: float, step: float) -> Iterator[float]:
    """The seed document's pattern, generalised: eight readings from `start`
    towards `end`, eight back, forever (distance: 50 → 5 → 50 cm in 5.5 cm
    steps, exactly the seed's `max(5, 50 - i*5.5)` / `min(50, 5 + (i-8)*5.5)`)."""
    low, high = min(start, end), max(start, end)
    toward = step if end > start else -step
    i = 0
    while True:
        phase = i % 16
        if phase < 8:
            yield min(high, max(low, start + phase * toward))
        else:
            yield min(high, max(low, end - (phase - 8) * toward))
        i += 1


def _non_negative(value: float | int) -> str | None:
    return None if value >= 0 else "must not be negative"


def _script_values(values: list[Any]) -> str | None:
    if not values:
        return "must list at least one value"
    bad = [v for v in values if v is not None and not isinstance(v, int | float)]
    return f"entries must be numbers, true/false or null, got {bad[0]!r}" if bad else None


class SimSensor(ThreadedSensor):
    """A sensor of any kind that plays a profile: seed, constant, script or trace."""

    DRIVER = "sim"
    KINDS = tuple(SENSOR_KINDS)
    DEFAULT_INTERVAL = 1.5
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "profile",
            str,
            "seed",
            "seed (the kind's sweep) | constant | script | trace",
            one_of("seed", "constant", "script", "trace"),
        ),
        Option("value", (int, float), None, "profile: constant (default: the sweep's start)"),
        Option(
            "values",
            list,
            None,
            "profile: script, in the kind's unit; true/false for binary; null = no reading",
            _script_values,
        ),
        Option(
            "trace",
            str,
            None,
            "profile: trace — one reading per line, or an anse-hw .mcap recording",
            a_path,
        ),
        Option("repeat", bool, True, "script/trace: start again at the end (else go silent)"),
        Option(
            "noise",
            (int, float),
            0.0,
            "standard deviation added to each reading, in the kind's unit (0 to 1000: "
            "beyond that the readings are noise alone)",
            in_range(0, 1000),
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

    @classmethod
    def device_problems(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        """A text trace is read as the run would read it (a recording is
        the recorder's to check)."""
        trace = options["trace"]
        if options["profile"] != "trace" or Path(trace).suffix == RECORDING_SUFFIX:
            return []
        try:
            _read_trace(Path(trace))
        except ValueError as exc:
            return [("trace", str(exc))]
        return []

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float = 0.5,
        *,
        kind=SENSOR_KINDS["distance"],
        recorded: Sequence[float | None] | None = None,
        **options: Any,
    ) -> None:
        """`recorded`: the readings a `profile: trace` plays when its file is
        an anse-hw recording, loaded by the daemon (anse_hw.recording.trace)."""
        super().__init__(name, interval, max_age, kind=kind)
        self.options = options
        self._values = self._profile(options, recorded)
        self._rng = random.Random(options["random_seed"])

    def _profile(
        self, options: dict[str, Any], recorded: Sequence[float | None] | None
    ) -> Iterator[float | None]:
        profile = options["profile"]
        if profile == "seed":
            return sweep(*self.kind.sweep)
        if profile == "constant":
            value = options["value"] if options["value"] is not None else self.kind.sweep[0]
            return iter(lambda: float(value), None)
        if profile == "script":
            values = [None if v is None else float(v) for v in options["values"]]
            return _replay(values, options["repeat"])
        if recorded is not None:
            return _replay(list(recorded), options["repeat"])
        try:
            return _replay(_read_trace(Path(options["trace"])), options["repeat"])
        except ValueError as exc:
            raise DriverError(f"{self.name}: trace: {exc}") from None

    def describe(self) -> str:
        return f"simulated {self.kind.name} ({self.options['profile']})"

    def measure(self, on_sample: Callable[[Sample], None], on_fault) -> None:
        deadline = time.monotonic()
        for count, value in enumerate(self._values):
            if self.options["fail_after"] is not None and count >= self.options["fail_after"]:
                raise RuntimeError(f"simulated driver fault after {count} readings")
            on_sample(self._reading(value))
            deadline += self.interval
            if self.stopping.wait(max(0.0, deadline - time.monotonic())):
                return
        self.stopping.wait()  # a script that does not repeat goes silent

    def _reading(self, value: float | None) -> Sample:
        if value is None or self._rng.random() < self.options["dropout"]:
            return Sample.none("simulated dropout")
        noise = self.options["noise"]
        if noise and not self.kind.binary:
            value += self._rng.gauss(0, noise)
        return Sample(min(self.kind.high, max(self.kind.low, value)))


def _replay(values: list[float | None], repeat: bool) -> Iterator[float | None]:
    while True:
        yield from values
        if not repeat:
            return


def _read_trace(path: Path) -> list[float | None]:
    """One reading per line ('-', none, null or nan: no reading; # comments).
    ValueError names the file, and the line where there is one."""
    try:
        lines = files.read_text(path, MAX_TRACE_BYTES).splitlines()
    except files.FileProblem as exc:
        text = f"{exc.path}:{exc.line}: {exc.reason}" if exc.line else str(exc)
        raise ValueError(text) from None
    values: list[float | None] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text in ("", "-", "none", "null", "nan"):
            values.append(None)
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"{path}:{number}: expected a number, got {text[:40]!r}")
        values.append(value)
    if not values:
        raise ValueError(f"{path} has no readings")
    return values


class SimActuator(ActuatorDriver):
    """A motor or an output with no pins: it is whatever it was last driven to."""

    DRIVER = "sim"
    KINDS = tuple(name for name, kind in ACTUATOR_KINDS.items() if not kind.steered)
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

    def __init__(self, name: str, safe_state: str, **options: Any) -> None:
        super().__init__(name, safe_state)
        self._state = safe_state
        self._commands = 0
        self._stall_after = options.get("stall_after")

    @property
    def state(self) -> str:
        return self._state

    def drive(self, state: str) -> None:
        if self._stall_after is not None and self._commands >= self._stall_after:
            threading.Event().wait()
        self._commands += 1
        self._state = state

    def close(self) -> None:
        self._state = self.safe_state

    def describe(self) -> str:
        return "simulated"


class SimDrive(DriveDriver):
    """A differential base with no pins: its wheels are the duties last set."""

    DRIVER = "sim"
    KINDS = tuple(name for name, kind in ACTUATOR_KINDS.items() if kind.steered)
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "jam_after",
            (int, float),
            None,
            "fault injection, with encoders: the left wheel jams (stops turning and "
            "counting) after this many seconds of driving, to see the stall stop",
            _non_negative,
        ),
    )

    def __init__(self, name: str, safe_state: str, **options: Any) -> None:
        super().__init__(name, safe_state)
        #: Seconds of driving before the left wheel jams (None: never).
        self.jam_after: float | None = options.get("jam_after")

    def set_wheels(self, left: float, right: float) -> None:
        self.wheels = (left, right)

    def stop(self) -> None:
        self.wheels = (0.0, 0.0)

    def close(self) -> None:
        self.stop()

    def describe(self) -> str:
        return "simulated drive"
