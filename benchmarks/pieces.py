"""The pieces of one reading's cost, timed alone, and the memory floor.

    python -m benchmarks.pieces      # writes the "Pieces" section of BENCHMARKS.md

What "Where the time goes" quotes: the parser, the engine with and without
an audience, the JSON for a reading's two events, and the resident memory of
an interpreter that has only imported asyncio and websockets (the floor under
any such daemon), beside anse-hw's own imports.  Also how long the config
loader takes to refuse the hostile files of tests/test_config_hostile.py,
which checks their work in function calls, not seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from anse_hw import config as configuration
from anse_hw import events
from anse_hw.app.devices import build_actuators, build_sensors
from anse_hw.drivers.protocols import TFminiParser, tfmini_frame
from anse_hw.engine import Engine
from anse_hw.readings import Sample
from benchmarks import run
from benchmarks.markdown import replace_section
from tests.test_config_hostile import PAIR, alias_bomb

ROUNDS = 20_000
ONE_SENSOR = """
sensors:
  - {name: front, driver: sim, interval: 10, max_age: 30}
actuators:
  - {name: movement, driver: sim}
reflexes:
  - {name: stop_close, sensor: front, below: 10, actuator: movement, command: stop}
  - {name: go_far, sensor: front, above: 15, actuator: movement, command: move}
"""
RSS = """
import sys
{imports}
for line in open('/proc/self/status'):
    if line.startswith('VmRSS'):
        print(int(line.split()[1]) / 1024)
"""


def per_call_us(work: Callable[[], object]) -> float:
    """The best of five rounds, in µs per call: the least the machine needed."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(ROUNDS):
            work()
        best = min(best, time.perf_counter() - began)
    return best / ROUNDS * 1e6


def best_ms(work: Callable[[], object], rounds: int = 5) -> float:
    """The best of `rounds` single calls, in ms."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best * 1000


def refusal_ms(text: str) -> float:
    def refuse() -> None:
        try:
            configuration.parse(text, "robot.yaml")
        except configuration.ConfigError:
            return
        raise AssertionError("a hostile config was accepted")

    return best_ms(refuse)


def engine(audience: bool) -> tuple[Engine, list[dict]]:
    cfg = configuration.parse(ONE_SENSOR)
    published: list[dict] = []
    made = Engine(
        cfg, build_sensors(cfg, None), build_actuators(cfg, None), published.extend, print
    )
    made.audience = lambda: audience
    return made, published


def rss_after(imports: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RSS.format(imports=imports)],
        capture_output=True,
        text=True,
        check=True,
        cwd=run.ROOT,
    )
    return float(out.stdout)


def main() -> None:
    parser = TFminiParser()
    frame = tfmini_frame(80)
    quiet, _ = engine(False)
    heard, published = engine(True)
    reading = lambda e: e.on_sample("front", Sample(80.0, None, time.monotonic()))  # noqa: E731
    reading(heard)
    sensor, world = published[-2:]
    rows = [
        ("parse one TFmini frame", per_call_us(lambda: list(parser.feed(frame)))),
        ("engine, one reading, nobody listening", per_call_us(lambda: reading(quiet))),
        ("engine, one reading, events built", per_call_us(lambda: reading(heard))),
        (
            "JSON for its two events",
            per_call_us(lambda: (events.encode(sensor), events.encode(world))),
        ),
    ]
    published.clear()
    loading = [
        ("a robot's config (two reflexes)", best_ms(lambda: configuration.parse(PAIR))),
        ("refused: an alias bomb (9^30 values)", refusal_ms(alias_bomb())),
        ("refused: 60,000 nested '['", refusal_ms("a: " + "[" * 60000)),
        ("refused: a 60,000-digit integer", refusal_ms("x: " + "9" * 60000)),
    ]
    memory = [
        ("python alone", rss_after("")),
        (
            "asyncio and websockets: the floor",
            rss_after("import asyncio, websockets.asyncio.server"),
        ),
        (
            "anse-hw's daemon and command line",
            rss_after("import anse_hw.app.cli, anse_hw.app.daemon"),
        ),
    ]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"""Measured by `python -m benchmarks.pieces` on {started}: each piece alone, the
best of five rounds of {ROUNDS:,} calls; resident memory of a fresh interpreter
after the imports named (nothing started).

| piece | µs per call |
|---|---|
{chr(10).join(f"| {name} | {us:.1f} |" for name, us in rows)}

| imports | RSS MB |
|---|---|
{chr(10).join(f"| {name} | {mb:.1f} |" for name, mb in memory)}
"""
    loader = f"""Measured by `python -m benchmarks.pieces` on {started} (load average
{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): the config loader (`config.parse`), the best of
five calls, on a robot's config and on the hostile files that
tests/test_config_hostile.py checks are refused with bounded work.

| config | ms |
|---|---|
{chr(10).join(f"| {name} | {ms:.1f} |" for name, ms in loading)}
"""
    print(body)
    print(loader)
    replace_section(Path(run.ROOT / "BENCHMARKS.md"), "Pieces", body)
    replace_section(Path(run.ROOT / "BENCHMARKS.md"), "Config loader", loader)


if __name__ == "__main__":
    main()
