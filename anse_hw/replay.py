"""`anse-hw replay FILE` and `anse-hw recordings DIR` (SPEC §15).

Replay feeds the recorded readings, in their order and (scaled) pace, to the
same engine on fakes, built from the config stored in the file (or another
one: `--config` shows what a different threshold would have done).  Live, it
is a daemon like any other, dashboard and all.  `--verify` runs on a virtual
clock as fast as it can, ticking the silence monitor between readings as the
real one would, and compares every reflex and actuator decision with the
recorded ones; operator commands are not readings, so `operator_*` decisions
are left out of the comparison.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from anse_hw import config as configuration
from anse_hw import recording
from anse_hw.daemon import Daemon, build_actuators, build_sensors
from anse_hw.drivers.base import Sample, SensorDriver
from anse_hw.engine import Engine

log = logging.getLogger("anse_hw")
EXIT_OK, EXIT_DIFFERENT = 0, 1


def load(path: str, config_path: str | None, start: float, end: float | None):
    """(recording, config on fakes, the readings in the window)."""
    rec = recording.read(Path(path))
    if not rec.readings:
        raise configuration.ConfigError([f"{path}: no readings recorded"])
    if config_path:
        cfg = configuration.load(config_path, sim=True)
    else:
        cfg = configuration.parse(rec.config_yaml, f"{path} (recorded config)", sim=True)
    # Replay is a robot of its own: never the recorded robot's broker or recorder.
    cfg = dataclasses.replace(cfg, mqtt=None, recording=None)
    t0 = rec.readings[0]["arrived"]
    window = [
        r
        for r in rec.readings
        if r["arrived"] - t0 >= start and (end is None or r["arrived"] - t0 <= end)
    ]
    return rec, cfg, window


def verify(path: str, config_path: str | None, start: float, end: float | None) -> int:
    rec, cfg, readings = load(path, config_path, start, end)
    clock = [readings[0]["arrived"]]
    published: list[dict[str, Any]] = []
    engine = Engine(
        cfg,
        build_sensors(cfg, None),
        build_actuators(cfg, None),
        published.extend,
        lambda exc: None,
        clock=lambda: clock[0],
    )
    engine.prepare()
    tick = clock[0] + engine.tick
    for r in readings:
        while tick <= r["arrived"]:  # the monitor's ticks between two readings
            clock[0] = tick
            engine.check_silence()
            tick += engine.tick
        clock[0] = r["arrived"]
        deliver(
            r,
            lambda sample, n=r["sensor"]: engine.on_sample(n, sample),
            lambda text, active, n=r["sensor"]: engine.on_fault(n, text, active),
        )
    if rec.ended == "shutdown" and end is None:
        engine.stop_all("the recorded daemon stopped here")
    replayed = _decisions(published)
    recorded = _decisions(rec.events)
    if not rec.complete:  # cut short: what happened after the cut was never written
        replayed = replayed[: len(recorded)]
    if start or end is not None:
        recorded = recorded[: len(replayed)]
    for i, (want, got) in enumerate(zip(recorded, replayed, strict=False)):
        if want != got:
            log.error("decision %d differs: recorded %s, replayed %s", i + 1, want, got)
            return EXIT_DIFFERENT
    if len(recorded) != len(replayed):
        longer, which = (
            (recorded, "recorded") if len(recorded) > len(replayed) else (replayed, "replayed")
        )
        log.error(
            "decision %d is only in the %s run: %s",
            min(len(recorded), len(replayed)) + 1,
            which,
            longer[min(len(recorded), len(replayed))],
        )
        return EXIT_DIFFERENT
    log.info(
        "replay matches the recording: %d readings, %d decisions", len(readings), len(recorded)
    )
    return EXIT_OK


def _decisions(stream: list[dict[str, Any]]) -> list[tuple]:
    return [d for d in recording.decisions(stream) if not d[1].startswith("operator_")]


def deliver(r: dict[str, Any], on_sample, on_fault) -> None:
    """A recorded row, to a sensor's callbacks: a device fault or a reading."""
    if r.get("fault") is not None:
        on_fault(r["fault"], bool(r.get("active")))
    else:
        on_sample(Sample(r["value"], r.get("problem")))


def live(
    path: str,
    config_path: str | None,
    start: float,
    end: float | None,
    speed: float,
    host: str | None,
    port: int | None,
) -> int:
    _, cfg, readings = load(path, config_path, start, end)
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    # Never the recorded robot's token: a replay's state is its own, and thrown away.
    server = dataclasses.replace(cfg.server, control_token_file=None, **overrides)
    cfg = dataclasses.replace(cfg, server=server)
    source = ReplaySource(readings, speed, [s.name for s in cfg.sensors])
    log.info(
        "replaying %s: %d readings over %.1f s at %gx",
        path,
        len(readings),
        readings[-1]["arrived"] - readings[0]["arrived"],
        speed,
    )
    with tempfile.TemporaryDirectory(prefix="anse-hw-replay-") as scratch:
        state = Path(scratch) / "replay"  # not there yet: a first start, released
        daemon = Daemon(cfg, sensors=lambda c, factory: source.sensors(c), state=state)
        source.finished = daemon.request_stop
        return asyncio.run(daemon.run())


class ReplaySource:
    """Feeds every replay sensor from one thread, in the recorded order and pace."""

    def __init__(self, readings: list[dict[str, Any]], speed: float, names: list[str]) -> None:
        self.readings = readings
        self.speed = speed
        self.callbacks: dict[str, tuple] = {}
        self.expected = set(names)
        self.finished = lambda: None

    def sensors(self, cfg: configuration.Config) -> dict[str, SensorDriver]:
        return {s.name: ReplaySensor(s.name, s.interval, s.max_age, self) for s in cfg.sensors}

    def ready(self, name: str, callbacks: tuple) -> None:
        self.callbacks[name] = callbacks
        if set(self.callbacks) == self.expected:
            threading.Thread(target=self._run, name="replay", daemon=True).start()

    def _run(self) -> None:
        began, t0 = time.monotonic(), self.readings[0]["arrived"]
        for r in self.readings:
            delay = (r["arrived"] - t0) / self.speed - (time.monotonic() - began)
            if delay > 0:
                time.sleep(delay)
            callbacks = self.callbacks.get(r["sensor"])
            if callbacks is not None:
                deliver(r, *callbacks[:2])
        log.info("replay finished")
        self.finished()


class ReplaySensor(SensorDriver):
    DRIVER = "replay"
    KINDS = ()

    def __init__(self, name: str, interval: float, max_age: float, source: ReplaySource) -> None:
        super().__init__(name, interval, max_age)
        self.source = source

    def start(self, on_sample, on_fault, on_crash) -> None:
        self.source.ready(self.name, (on_sample, on_fault, on_crash))

    def close(self) -> None:
        return None

    def describe(self) -> str:
        return "replayed from the recording"


def list_recordings(directory: str) -> int:
    found = list(recording.recordings_in(Path(directory)))
    if not found:
        print(f"no recordings in {directory}")
        return EXIT_OK
    for rec in found:
        counts = {}
        for e in rec.events:
            counts[e["type"]] = counts.get(e["type"], 0) + 1
        status = "" if rec.complete else "  (cut short)"
        print(
            f"{rec.path.name}  {rec.span:.1f} s  sensors: {', '.join(rec.sensors) or '-'}  "
            f"readings {len(rec.readings)}, events {len(rec.events)} "
            f"(reflex {counts.get('reflex', 0)}, actuator {counts.get('actuator', 0)}){status}"
        )
    return EXIT_OK
