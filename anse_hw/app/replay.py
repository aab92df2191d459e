"""`anse-hw replay FILE` (README.md, "Recording and replay"); `recordings DIR` is in listing.py.

Replay feeds the recorded readings, in their order and (scaled) pace, to the
same engine on fakes, built from the config stored in the file (or another
one: `--config` shows what a different threshold would have done).  Live, it
is a daemon like any other, dashboard and all.  `--verify` runs on a virtual
clock as fast as it can, ticking the silence monitor between readings as the
real one would, and compares every reflex and actuator decision with the
recorded ones; operator commands and the hardwired E-stop are not readings,
so `operator_*` and `estop_input` decisions are left out of the comparison.

Files are read as streams (see anse_hw.recording): a first pass checks the
whole file and finds its span and sensors, so that a damaged file, a window
outside the recording or a config without the recorded sensors is refused
before anything runs; then the readings are fed one at a time.  A window
(--from/--to) of a complete, indexed file seeks instead: its summary section
stands in for the first pass, and only the chunks the window overlaps are
read, checked first, then fed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anse_hw import config as configuration
from anse_hw import files, recording
from anse_hw.app.daemon import Daemon
from anse_hw.app.devices import build_actuators
from anse_hw.config import yamlfile
from anse_hw.engine import Engine
from anse_hw.errors import FAILURE, OK, ConfigError, DriverError
from anse_hw.model import Config
from anse_hw.operator import ESTOP_INPUT
from anse_hw.readings import Sample, SensorDriver
from anse_hw.recording import Decision, Reading, Summary

log = logging.getLogger("anse_hw")
#: --verify when a decision differs.
EXIT_DIFFERENT = FAILURE
#: --speed: from a thousandth (slow motion) to as fast as the machine goes.
SPEEDS = (0.001, 1e6)
#: What replay leaves out of the config it runs: the recorded robot's broker
#: (and the password file that goes with it), its recorder, and its control
#: token file.  Replay is a robot of its own, reaching nothing of the other.
NOT_REPLAYED = ("mqtt", "recording")
NOT_REPLAYED_SERVER = ("control_token_file",)
#: The longest a live replay sleeps at once (it checks for a stop in between).
NAP = 3600.0


# -- what to replay -----------------------------------------------------------


def seconds(option: str, text: str) -> float:
    """--from/--to: a number of seconds into the recording, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError([f"{option}: {text!r} is not a number of seconds"]) from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError([f"{option} must be 0 or more seconds, not {value:g}"])
    return value


def speed(text: str) -> float:
    """--speed: how many times faster than recorded."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError([f"--speed: {text!r} is not a number"]) from None
    low, high = SPEEDS
    if not low <= value <= high:  # also NaN
        raise ConfigError([f"--speed must be from {low:g} to {high:g}, not {value:g}"])
    return value


@dataclass(frozen=True)
class Window:
    """--from/--to: the part of the recording to replay, in seconds from its
    first reading."""

    start: float = 0.0
    end: float | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> Window:
        window = cls(
            seconds("--from", start) if start is not None else 0.0,
            seconds("--to", end) if end is not None else None,
        )
        if window.end is not None and window.start > window.end:
            raise ConfigError(
                [f"--from {window.start:g} is after --to {window.end:g}: nothing to replay"]
            )
        return window

    def described(self) -> str:
        end = f"{self.end:g} s" if self.end is not None else "the end"
        return f"from {self.start:g} s to {end}"

    @property
    def partial(self) -> bool:
        return self.start > 0 or self.end is not None

    def check(self, summary: Summary) -> None:
        if self.start > summary.span:
            raise ConfigError(
                [
                    f"--from {self.start:g} is past the end of {summary.path} "
                    f"(its readings span {summary.span:.1f} s)"
                ]
            )

    def readings(self, summary: Summary) -> Iterator[Reading]:
        """The readings in the window, in file order; no more than the scan
        counted (a file still being written has grown since)."""
        t0 = summary.first or 0.0
        if summary.from_index:  # only the chunks the window needs are read
            end = None if self.end is None else t0 + self.end
            yield from recording.readings_between(summary.path, t0 + self.start, end)
            return
        for count, reading in enumerate(recording.readings(summary.path)):
            if count >= summary.readings:
                return
            offset = reading.arrived - t0
            if offset >= self.start and (self.end is None or offset <= self.end):
                yield reading

    def until(self, summary: Summary) -> float:
        """The last moment replay reaches: the window's end, or the last thing
        in the file (a timeout after the last reading happened too)."""
        if self.end is None:
            return summary.until
        return min(summary.until, (summary.first or 0.0) + self.end)


def load(path: str, config_path: str | None, window: Window) -> tuple[Summary, Config]:
    """The file's summary and the config to replay it with, once both are
    known to fit together."""
    # A window of an indexed file seeks: the summary section stands in for
    # reading the whole file first, and each chunk read is checked as it is.
    summary = (window.partial and recording.indexed(path)) or recording.scan(path)
    if not summary.readings:
        cut = f" (cut short at offset {summary.cut_at})" if not summary.complete else ""
        raise ConfigError([f"{path}: no readings recorded{cut}"])
    if config_path:
        cfg = replay_config(configuration.read(config_path), config_path)
    elif summary.config_yaml:
        cfg = replay_config(summary.config_yaml, f"{path} (recorded config)")
    else:
        raise ConfigError([f"{path}: no config recorded; give one with --config FILE"])
    names = {s.name for s in cfg.sensors}
    missing = sorted(summary.sensors - names)
    if missing:
        given = f"--config {config_path}" if config_path else "its recorded config"
        raise ConfigError(
            [
                f"{path} has readings of {', '.join(map(repr, missing))}, which {given} "
                f"does not have (it has: {', '.join(sorted(names))})"
            ]
        )
    window.check(summary)
    if summary.from_index:  # the window's chunks, checked before anything runs
        deque(window.readings(summary), maxlen=0)
    if not summary.complete:
        log.warning(
            "%s was cut short at offset %d: replaying what is before it", path, summary.cut_at
        )
    return summary, cfg


def replay_config(text: str, source: str) -> Config:
    """The robot replay runs: `text`'s sensors, actuators and reflexes on fakes
    (sim actuators without fault injection: a recorded `stall_after` would hang
    replay), without NOT_REPLAYED.  Those are left out of the data before it is
    validated, so that validating never reads the recorded password_file."""
    if len(text.encode()) > yamlfile.MAX_BYTES:
        raise ConfigError(
            [f"{source}: larger than {yamlfile.MAX_BYTES // 1024} KiB, not an anse-hw config"]
        )
    try:
        data, lines = yamlfile.load(text)
    except yamlfile.YamlProblem as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise ConfigError([f"{where}: {exc.message}"]) from None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in NOT_REPLAYED}
        if isinstance(data.get("server"), dict):
            data["server"] = {
                k: v for k, v in data["server"].items() if k not in NOT_REPLAYED_SERVER
            }
    cfg = configuration.build(data if data is not None else {}, source, lines, sim=True)
    # Nor encoders: the wheels' speeds and stalls were the world's, not the reflexes'.
    plain = tuple(
        dataclasses.replace(a, options={}, encoders=None, stall=None) for a in cfg.actuators
    )
    return dataclasses.replace(cfg, actuators=plain)


def deliver(r: Reading, on_sample: Callable, on_fault: Callable) -> None:
    """A recorded row, to a sensor's callbacks: a device fault or a reading."""
    if r.fault is not None:
        on_fault(r.fault, r.active)
    else:
        on_sample(Sample(r.value, r.problem))


def _compared(decision: Decision | None) -> bool:
    """Reflex and actuator decisions; not an operator's, nor the hardwired
    E-stop's (replay has neither the operator nor the button)."""
    return (
        decision is not None
        and not decision[1].startswith("operator_")
        and decision[1] != ESTOP_INPUT
    )


# -- --verify -----------------------------------------------------------------


class VirtualClock:
    """The engine's clock in --verify: the time of the reading being replayed."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SilenceMonitor:
    """The engine's monitor thread on the virtual clock: a tick every
    `engine.tick` seconds from `origin`, as live, but only the ticks that can
    change something.

    A tick changes something only when a sensor that is neither stale nor
    faulted has gone longer than its max_age without a valid reading (it goes
    stale, and a guard stops its actuators), or a manual hold's deadline has
    passed, or a reflex's for: runs out.  On any other tick `check_silence`
    finds nothing to do (it only refreshes the heartbeat, which no decision
    reads).  So rather than tick through a gap of 1e9 s ten thousand million
    times, the monitor jumps to the first tick at which one of those is due;
    the decisions are the same."""

    def __init__(self, engine: Engine, clock: VirtualClock) -> None:
        self.engine = engine
        self.clock = clock
        self.origin = clock.now
        self.step = engine.tick
        self.next = 1  # the index of the next tick not yet run

    def run_until(self, moment: float) -> None:
        """Every tick that changes something, up to and including `moment`."""
        while (k := self._first_due()) is not None and self._time(k) <= moment:
            self.clock.now = self._time(k)
            self.engine.check_silence()
            self.next = k + 1
        self.next = max(self.next, self._first_tick(lambda now: now > moment, moment))

    def _first_due(self) -> int | None:
        now = self.clock.now
        ticks = [
            # due once its age passes max_age: estimated from when it reaches it
            self._first_tick(
                lambda t, s=state: s.age(t) > s.max_age, now - state.age(now) + state.max_age
            )
            for state in self.engine.world.sensors.values()
            if not state.stale and not state.fault
        ]
        ticks += [
            self._first_tick(lambda t, h=hold: h.deadline <= t, hold.deadline)
            for hold in self.engine.holds.values()
            if hold.deadline is not None
        ]
        due = self.engine.next_due()  # a for: running out between readings
        if due is not None:
            ticks.append(self._first_tick(lambda t: due <= t, due))
        return min(ticks, default=None)

    def _first_tick(self, due: Callable[[float], bool], estimate: float) -> int:
        """The first tick from `self.next` on at which `due` holds, found from
        the moment `estimate` it is due at.  The engine's own test decides (no
        rounding differs); the steps around the estimate are one or two, as
        every time in a file is below recording.MAX_SECONDS."""
        k = max(self.next, math.floor((estimate - self.origin) / self.step))
        while k > self.next and due(self._time(k - 1)):
            k -= 1
        while not due(self._time(k)):
            k += 1
        return k

    def _time(self, k: int) -> float:
        return self.origin + k * self.step


class _Comparison:
    """The replayed decisions against the recorded ones, as they are made:
    only the replayed decisions not yet compared are held, never a list of
    either run's.  `problem` is the first difference, once there is one."""

    def __init__(self, recorded: Iterator[Decision], cut_short: bool, partial: bool) -> None:
        self.recorded = recorded
        self.cut_short = cut_short  # what happened after the cut was never written
        self.partial = partial  # --from/--to: the recording goes on beyond
        self.matched = 0
        self.beyond = False  # the recorded decisions of a cut file ran out
        self.problem: str | None = None

    def take(self, replayed: deque[Decision]) -> bool:
        """Compare (and drop) what the engine decided since; False at a difference."""
        while replayed and self.problem is None:
            got = replayed.popleft()
            if self.beyond:
                continue
            want = next(self.recorded, None)
            if want is None and self.cut_short:
                self.beyond = True
            elif want is None:
                self.problem = f"decision {self.matched + 1} is only in the replayed run: {got}"
            elif want != got:
                self.problem = (
                    f"decision {self.matched + 1} differs: recorded {want}, replayed {got}"
                )
            else:
                self.matched += 1
        return self.problem is None

    def finish(self) -> bool:
        """False if the recording has a decision the replay did not make."""
        if self.problem is None and not (self.partial or self.beyond):
            want = next(self.recorded, None)
            if want is not None:
                self.problem = f"decision {self.matched + 1} is only in the recorded run: {want}"
        return self.problem is None


def verify(path: str, config_path: str | None, window: Window) -> int:
    summary, cfg = load(path, config_path, window)
    replayed: deque[Decision] = deque()

    def publish(batch: list[dict[str, Any]]) -> None:
        replayed.extend(d for d in map(recording.decision, batch) if _compared(d))

    recorded = (d for d in recording.decisions(path) if _compared(d))
    comparison = _Comparison(recorded, not summary.complete, window.partial)
    try:
        count = _run_virtual(summary, cfg, window, publish, lambda: comparison.take(replayed))
        if count == 0:
            raise ConfigError([f"{path}: no readings {window.described()}"])
        if not (comparison.take(replayed) and comparison.finish()):
            log.error("%s", comparison.problem)
            return EXIT_DIFFERENT
    finally:
        recorded.close()
    log.info("replay matches the recording: %d readings, %d decisions", count, comparison.matched)
    return OK


def _run_virtual(
    summary: Summary,
    cfg: Config,
    window: Window,
    publish: Callable[[list[dict[str, Any]]], None],
    still_same: Callable[[], bool],
) -> int:
    """The window's readings through an engine on the virtual clock, asking
    `still_same` after each; returns how many readings were replayed."""
    readings = window.readings(summary)
    first = next(readings, None)
    if first is None:
        return 0
    clock = VirtualClock(first.arrived)
    sensors = {s.name: ReplaySensor(s.name, s.interval, s.max_age) for s in cfg.sensors}
    engine = Engine(
        cfg, sensors, build_actuators(cfg, None), publish, lambda exc: None, clock=clock
    )
    engine.prepare()
    monitor = SilenceMonitor(engine, clock)
    count = 0
    for r in itertools.chain([first], readings):
        monitor.run_until(r.arrived)
        clock.now = r.arrived
        deliver(
            r,
            lambda sample, n=r.sensor: engine.on_sample(n, sample),
            lambda text, active, n=r.sensor: engine.on_fault(n, text, active),
        )
        count += 1
        if not still_same():
            return count
    # A file cut short may end just after a decision the live monitor made at
    # a tick up to one step away from this one's: one more tick makes it here
    # too (anything it adds beyond the cut is not compared).
    monitor.run_until(window.until(summary) + (0.0 if summary.complete else monitor.step))
    if summary.ended == "shutdown" and window.end is None:
        engine.stop_all("the recorded daemon stopped here")
    return count


# -- live ---------------------------------------------------------------------


def live(
    path: str,
    config_path: str | None,
    window: Window,
    pace: float,
    host: str | None,
    port: int | None,
) -> int:
    summary, cfg = load(path, config_path, window)
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, **overrides))
    source = ReplaySource(summary, window, pace, [s.name for s in cfg.sensors])
    log.info("replaying %s %s at %gx", path, window.described(), pace)
    # Never the recorded robot's latch or token: a replay's state is its own,
    # and thrown away (the recorded control_token_file is dropped in load()).
    with tempfile.TemporaryDirectory(prefix="anse-hw-replay-") as scratch:
        state = Path(scratch) / "replay"  # not there yet: a first start, released
        daemon = Daemon(cfg, sensors=lambda c, factory, i2c: source.sensors(c), state=state)
        source.finished = daemon.request_stop
        return asyncio.run(daemon.run())


class ReplaySource:
    """Feeds every replay sensor from one thread, in the recorded order and pace."""

    def __init__(self, summary: Summary, window: Window, pace: float, names: list[str]) -> None:
        self.summary = summary
        self.window = window
        self.pace = pace
        self.callbacks: dict[str, tuple] = {}
        self.expected = set(names)
        self.finished: Callable[[], None] = lambda: None
        self._stop = threading.Event()

    def sensors(self, cfg: Config) -> dict[str, SensorDriver]:
        return {
            s.name: ReplaySensor(s.name, s.interval, s.max_age, self.ready, self._stop.set)
            for s in cfg.sensors
        }

    def ready(self, name: str, callbacks: tuple) -> None:
        self.callbacks[name] = callbacks
        if set(self.callbacks) == self.expected:
            threading.Thread(target=self._run, name="replay", daemon=True).start()

    def _run(self) -> None:
        began, first, fed = time.monotonic(), None, 0
        try:
            for r in self.window.readings(self.summary):
                first = r.arrived if first is None else first
                if self._sleep_until(began + (r.arrived - first) / self.pace):
                    return  # the daemon is stopping
                deliver(r, *self.callbacks[r.sensor][:2])
                fed += 1
        except files.FileProblem as exc:  # changed on disk since it was checked
            crash = next(iter(self.callbacks.values()))[2]
            crash(DriverError(str(exc)))
            return
        log.info("replay finished: %d readings", fed)
        self.finished()

    def _sleep_until(self, due: float) -> bool:
        """Wait for monotonic time `due` in naps; True if stopped meanwhile."""
        while (left := due - time.monotonic()) > 0:
            if self._stop.wait(min(left, NAP)):
                return True
        return self._stop.is_set()


class ReplaySensor(SensorDriver):
    """A sensor whose readings come from the recording (ReplaySource), or in
    --verify from the replay loop itself (then it is never started)."""

    DRIVER = "replay"
    KINDS = ()

    def __init__(
        self,
        name: str,
        interval: float,
        max_age: float,
        ready: Callable[[str, tuple], None] | None = None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, interval, max_age)
        self._ready = ready
        self._stop = stop

    def start(self, on_sample, on_fault, on_crash) -> None:
        if self._ready is not None:
            self._ready(self.name, (on_sample, on_fault, on_crash))

    def close(self) -> None:
        if self._stop is not None:
            self._stop()

    def describe(self) -> str:
        return "replayed from the recording"
