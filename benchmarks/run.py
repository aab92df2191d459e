"""The performance harness (BENCHMARKS.md).  One command, bounded in time, loopback only:

    python -m benchmarks.run              # prints the tables and writes BENCHMARKS.md
    python -m benchmarks.run --quick      # fewer samples, for a smoke run

Every scenario runs twice on the same machine and load: once against anse-hw
and once against the baseline (the seed's plain `await send` loop,
benchmarks/baseline.py).  The server under test runs in this process, with a
TFmini emulated on a pseudo-terminal and the motor on gpiozero's MockFactory
whose pins record when they change; the WebSocket clients run in a separate
process (benchmarks/clients.py).  Both sides use CLOCK_MONOTONIC.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pty
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw import config as configuration
from anse_hw.app import realtime
from anse_hw.app.daemon import Daemon
from anse_hw.drivers.protocols import tfmini_frame
from benchmarks.baseline import SeedStyleServer, bench_motor
from benchmarks.common import (
    ROOT,
    SENSOR_HZ,
    Clients,
    deliveries,
    pace,
    percentile,
    stop_latencies,
)
from benchmarks.common import machine as cpu_and_system
from benchmarks.markdown import keep_other_sections
from benchmarks.minimal import MinimalServer, ThreadedMinimalServer

CLIENT_MIXES = [
    (int(c), 1 if int(c) else 0) for c in os.environ.get("BENCH_CLIENTS", "0,100,500").split(",")
]
DEFAULT_SWITCH_INTERVAL = sys.getswitchinterval()
FORWARD_PIN = "GPIO17"
#: The servers measured beside anse-hw (benchmarks/baseline.py, benchmarks/minimal.py).
SIMPLE_SERVERS = {
    "baseline": SeedStyleServer,
    "minimal": MinimalServer,
    "threaded": ThreadedMinimalServer,
}


class TimedPin(MockPWMPin):
    """A mock PWM pin that notes, on CLOCK_MONOTONIC, every time it drops to 0."""

    stops: ClassVar[list[float]] = []

    def _change_state(self, value):
        was = self._state
        changed = super()._change_state(value)
        if changed and not value and was and self.info.name == FORWARD_PIN:
            TimedPin.stops.append(time.monotonic())
        return changed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


# ---------------------------------------------------------------- servers under test


class Rig:
    """A pseudo-terminal sensor, the motor's pin factory, and a server on a port."""

    def __init__(self, kind: str, extra: str = "") -> None:
        """`extra`: more YAML for anse-hw's config (an mqtt: section, say)."""
        self.kind = kind
        self.extra = extra
        self.port = free_port()
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.device = os.ttyname(self.slave)
        self.factory = MockFactory(pin_class=TimedPin)
        TimedPin.stops = []
        self._stop: Callable[[], None] = lambda: None

    def write(self, cm: int) -> float:
        now = time.monotonic()
        os.write(self.master, tfmini_frame(cm))
        return now

    def serve(self, scenario: Callable[[Rig], dict]) -> dict:
        """Run the server in this (main) thread and the scenario beside it."""
        result: dict = {}

        def drive() -> None:
            try:
                wait_listening(self.port)
                result.update(scenario(self))
            except BaseException as exc:
                result["error"] = repr(exc)
            finally:
                self._stop()

        threading.Thread(target=drive, daemon=True).start()
        if self.kind == "anse-hw":
            self._serve_ours()
        else:
            self._serve_simple(SIMPLE_SERVERS[self.kind])
        os.close(self.master)
        os.close(self.slave)
        if "error" in result:
            raise RuntimeError(f"{self.kind}: {result['error']}")
        return result

    def _serve_ours(self) -> None:
        cfg = configuration.parse(f"""
server: {{host: 127.0.0.1, port: {self.port}, max_clients: 2000}}
gpio: {{pin_factory: mock}}
sensors:
  - {{name: lidar, driver: serial, port: {self.device}, protocol: tfmini, max_age: 5}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.6}}
reflexes:
  - {{name: proximity_safeguard, sensor: lidar, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: lidar, above: 15, actuator: movement, command: move}}
{self.extra}""")
        daemon = Daemon(cfg, pin_factory=self.factory)
        self._stop = daemon.request_stop
        asyncio.run(daemon.run())

    def _serve_simple(self, cls: type) -> None:
        """The baseline or the minimal anchor, on the same pty and motor."""
        motor = bench_motor(self.factory)
        server = cls(self.port, self.device, motor)

        async def run() -> None:
            loop = asyncio.get_running_loop()
            self._stop = lambda: loop.call_soon_threadsafe(server.stop.set)
            await server.run()

        asyncio.run(run())
        motor.close()


# ---------------------------------------------------------------- scenarios


def reflex_scenario(clients: int, stalled: int, cycles: int) -> Callable[[Rig], dict]:
    """Far for 100 ms, close for 100 ms, `cycles` times: each close is one stop."""

    def scenario(rig: Rig) -> dict:
        swarm = Clients(rig.port, clients, stalled, record=0)
        swarm.start()
        pace(rig, [80] * 50)  # let the motor start and the buffers fill
        closes: list[float] = []
        for _ in range(cycles):
            pace(rig, [80] * 10)
            closes.append(pace(rig, [5] * 10)[0])  # the first close frame is the one that stops
        time.sleep(2.0)  # let a slow server finish what it was given
        swarm.finish()
        latencies, missed = stop_latencies(closes, TimedPin.stops)
        return {"latencies_ms": latencies, "missed": missed, "stops": len(closes)}

    return scenario


def fanout_scenario(clients: int, max_hz: float, seconds: float) -> Callable[[Rig], dict]:
    """Far readings with distinct values at SENSOR_HZ; clients note when each arrives."""

    def scenario(rig: Rig) -> dict:
        swarm = Clients(rig.port, clients, max_hz=max_hz, record=min(clients, 200))
        count = int(seconds * SENSOR_HZ)
        values = [20 + (i % 900) for i in range(count + 100)]
        warmup = pace(rig, values[:100])
        swarm.start()
        # A server far behind may still be delivering warm-up readings: count those too.
        written = warmup + pace(rig, values[100:])
        writes = dict(zip(map(float, values), written, strict=True))
        time.sleep(0.2)
        summary, arrivals = swarm.finish()
        return {
            "latencies_ms": deliveries(arrivals, writes),
            "messages": summary["messages"],
            "seconds": summary["seconds"],
            "errors": summary["errors"],
        }

    return scenario


def cpu_scenario(clients: int, hz: float, seconds: float) -> Callable[[Rig], dict]:
    """A constant far distance at `hz` with `clients` readers: the server's CPU
    per reading (the process's CPU time minus the pacing thread's own)."""

    def scenario(rig: Rig) -> dict:
        swarm = Clients(rig.port, clients, record=0) if clients else None
        if swarm:
            swarm.start()
        pace(rig, [80] * int(hz), hz)  # a second to start the motor and settle
        count = int(seconds * hz)
        began, pacer = process_time(), time.thread_time()
        pace(rig, [80] * count, hz)
        server = process_time() - began - (time.thread_time() - pacer)
        if swarm:
            swarm.finish()
        return {"cpu_s": server, "seconds": seconds, "readings": count}

    return scenario


def process_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- cost


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(pid: int, seconds: float) -> tuple[float, float]:
    """(% of one core, RSS MB) over a window."""
    before, began = process_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu = (process_cpu_seconds(pid) - before) / (time.monotonic() - began) * 100
    return cpu, rss_mb(pid)


def cost(kind: str, clients: int, seconds: float) -> dict:
    port = free_port()
    if kind == "anse-hw":
        argv = [
            sys.executable,
            "-m",
            "anse_hw",
            "--sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    else:
        argv = [sys.executable, "-m", "benchmarks.baseline", "--port", str(port)]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        time.sleep(2)
        idle_cpu, idle_rss = measure(server.pid, seconds)
        swarm = Clients(port, clients, record=0)
        swarm.start()
        time.sleep(2)
        busy_cpu, busy_rss = measure(server.pid, seconds)
        swarm.finish()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "idle_cpu": idle_cpu,
        "idle_rss": idle_rss,
        "cpu": busy_cpu,
        "rss": busy_rss,
        "per_client_kb": (busy_rss - idle_rss) * 1024 / clients,
    }


# ---------------------------------------------------------------- report


@dataclass
class Report:
    rows: dict[str, list[str]] = field(default_factory=dict)
    #: The figures the targets are judged on (see `targets`).
    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, table: str, row: str) -> None:
        self.rows.setdefault(table, []).append(row)
        print(f"[{table}] {row}", flush=True)

    def note(self, name: str, value: float) -> None:
        self.figures.setdefault(name, []).append(value)


#: Issue 15's targets: (figure, the test, how it is shown, what it means).
TARGETS = [
    (
        "cpu_ratio_3",
        lambda v: v <= 1.2,
        "{:.2f}×",
        "CPU per reading, 100/s, 3 clients ≤ 1.2× minimal",
    ),
    (
        "cpu_ratio_0",
        lambda v: v <= 1.2,
        "{:.2f}×",
        "CPU per reading, 100/s, no client ≤ 1.2× minimal",
    ),
    (
        "broadcast_1000",
        lambda v: v >= 90,
        "{:.0f} %",
        "fan-out at 1000 clients ≥ 90 % of broadcast()",
    ),
    (
        "reflex_p99_500",
        lambda v: v <= 1.0,
        "{:.2f} ms",
        "reflex p99, 500 + 1 stalled ≤ 1 ms, every run",
    ),
    ("idle_rss", lambda v: v <= 28, "{:.1f} MB", "idle RSS ≤ 28 MB"),
    ("client_kb", lambda v: v <= 16, "{:.1f} KB", "memory per client ≤ 16 KB"),
]


def targets(report: Report) -> str:
    rows = []
    for name, met, shown, text in TARGETS:
        values = report.figures.get(name)
        if not values:
            continue
        verdict = "met" if all(met(v) for v in values) else "**missed**"
        rows.append(f"| {text} | {', '.join(shown.format(v) for v in values)} | {verdict} |")
    return "\n".join(rows)


def fmt_latency(result: dict) -> tuple[str, str, str]:
    values = result["latencies_ms"]
    missed = result.get("missed", 0)
    if not values:
        return "—", "—", f"none of {result.get('stops', 0)} stops happened"
    p50, p99, worst = percentile(values, 50), percentile(values, 99), max(values)
    note = f"{missed} of {result['stops']} stops never happened" if missed else ""
    return f"{p50:.2f}", f"{p99:.2f}", f"{worst:.2f}" + (f" ({note})" if note else "")


def ratio(ours: float, base: float) -> str:
    if ours <= 0 or base != base:
        return "—"
    return f"{base / ours:.1f}×"


def run_reflex(report: Report, cycles: int) -> None:
    table = "reflex"
    for clients, stalled in CLIENT_MIXES:
        results = {
            kind: Rig(kind).serve(reflex_scenario(clients, stalled, cycles))
            for kind in ("anse-hw", "baseline", "minimal")
        }
        sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)  # the daemon lowered it for itself
        ours, base = results["anse-hw"], results["baseline"]
        o, b, m = (fmt_latency(results[k]) for k in ("anse-hw", "baseline", "minimal"))
        if clients == 500 and ours["latencies_ms"]:
            report.note("reflex_p99_500", percentile(ours["latencies_ms"], 99))
        p99_ratio = (
            ratio(percentile(ours["latencies_ms"], 99), percentile(base["latencies_ms"], 99))
            if base["latencies_ms"] and not base["missed"]
            else "∞ (stops lost)"
            if base["missed"]
            else "—"
        )
        report.add(
            table,
            f"| {clients} + {stalled} stalled | {o[0]} | {o[1]} | {o[2]} | "
            f"{b[0]} | {b[1]} | {b[2]} | {p99_ratio} | {m[0]} | {m[1]} | {m[2]} |",
        )


def repeat_reflex(report: Report, cycles: int, runs: int) -> None:
    """More runs of anse-hw alone at 500 clients + 1 stalled, for the target's
    "every run": its p99 is noted each time."""
    for _ in range(runs):
        result = Rig("anse-hw").serve(reflex_scenario(500, 1, cycles))
        sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)
        report.note("reflex_p99_500", percentile(result["latencies_ms"], 99))
        print(f"[reflex again] p99 {report.figures['reflex_p99_500'][-1]:.2f} ms", flush=True)


def run_cpu(report: Report, seconds: float) -> None:
    kinds = ("anse-hw", "minimal", "threaded")
    for hz, clients in ((10, 0), (100, 0), (10, 3), (100, 3)):
        results = {kind: Rig(kind).serve(cpu_scenario(clients, hz, seconds)) for kind in kinds}
        sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)
        per = {k: r["cpu_s"] / r["readings"] * 1e6 for k, r in results.items()}
        share = {k: r["cpu_s"] / r["seconds"] * 100 for k, r in results.items()}
        cells = " | ".join(f"{share[k]:.2f} % | {per[k]:.0f} µs" for k in kinds)
        if hz == 100:
            report.note(f"cpu_ratio_{clients}", per["anse-hw"] / per["minimal"])
        report.add(
            "cpu",
            f"| {hz} readings/s, {clients} clients | {cells} | "
            f"{per['anse-hw'] / per['minimal']:.2f}× | {per['anse-hw'] / per['threaded']:.2f}× |",
        )


def run_fanout(report: Report, seconds: float) -> None:
    for clients, max_hz in ((100, 0), (1000, 0), (1000, 10)):
        kinds = ("anse-hw", "baseline") + (("minimal",) if not max_hz else ())
        results = {
            kind: Rig(kind).serve(fanout_scenario(clients, max_hz, seconds)) for kind in kinds
        }
        cells = []
        for kind in kinds:
            r = results[kind]
            lat = r["latencies_ms"]
            rate = r["messages"] / r["seconds"] if r["seconds"] else 0
            cells.append(
                (
                    percentile(lat, 50) if lat else float("nan"),
                    percentile(lat, 99) if lat else float("nan"),
                    rate,
                )
            )
        (o50, o99, orate), (b50, b99, brate) = cells[:2]
        label = f"{clients} @ {'full rate' if not max_hz else f'max_hz={max_hz:g}'}"
        report.add(
            "fanout",
            f"| {label} | {o50:.1f} | {o99:.1f} | {orate:,.0f} | {b50:.1f} | "
            f"{b99:.1f} | {brate:,.0f} | {ratio(o99, b99)} |",
        )
        if len(cells) == 3:
            m50, m99, mrate = cells[2]
            if clients == 1000:
                report.note("broadcast_1000", orate / mrate * 100)
            report.add(
                "broadcast",
                f"| {clients} | {orate:,.0f} | {o50:.1f} | {o99:.1f} | {mrate:,.0f} | "
                f"{m50:.1f} | {m99:.1f} | {orate / mrate * 100:.0f} % |",
            )


def run_cost(report: Report, clients: int, seconds: float) -> None:
    results = {kind: cost(kind, clients, seconds) for kind in ("anse-hw", "baseline")}
    o, b = results["anse-hw"], results["baseline"]
    report.note("idle_rss", o["idle_rss"])
    report.note("client_kb", o["per_client_kb"])
    report.add(
        "cost",
        f"| idle daemon, 1.5 s interval | {o['idle_cpu']:.2f} % | "
        f"{o['idle_rss']:.1f} MB | {b['idle_cpu']:.2f} % | {b['idle_rss']:.1f} MB |",
    )
    report.add(
        "cost",
        f"| with {clients} idle clients | {o['cpu']:.2f} % | {o['rss']:.1f} MB | "
        f"{b['cpu']:.2f} % | {b['rss']:.1f} MB |",
    )
    report.add(
        "cost",
        f"| per connected client | — | {o['per_client_kb']:.0f} KB | — | "
        f"{b['per_client_kb']:.0f} KB |",
    )


def machine() -> str:
    rt_allowed = (
        os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= realtime.PRIORITY
    )
    return (
        f"{cpu_and_system()}; sensor threads at SCHED_FIFO: "
        f"{'yes' if rt_allowed else 'no (not permitted for this user)'}"
    )


def keep_state_aside() -> None:
    """The in-process daemons keep their E-stop latch and token here, not in
    /var/lib/anse-hw or ~/.local/state/anse-hw."""
    os.environ["STATE_DIRECTORY"] = tempfile.mkdtemp(prefix="anse-bench-state-")


def head(*columns: str) -> str:
    """A markdown table's header and rule."""
    return f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}"


def latency_columns(kind: str) -> tuple[str, ...]:
    return f"{kind} p50 ms", "p99 ms", "max ms"


def rate_columns(kind: str) -> tuple[str, ...]:
    return f"{kind} msgs/s", "p50 ms", "p99 ms"


REFLEX_HEAD = head(
    "clients",
    *latency_columns("anse-hw"),
    *latency_columns("baseline"),
    "p99 ratio",
    *latency_columns("minimal"),
)
CPU_HEAD = head(
    "readings/s, clients",
    *("anse-hw", "µs/reading", "minimal", "µs/reading", "threaded", "µs/reading"),
    *("÷ minimal", "÷ threaded"),
)
BROADCAST_HEAD = head(
    "clients", *rate_columns("anse-hw"), *rate_columns("broadcast()"), "anse-hw ÷ broadcast()"
)


def write_markdown(report: Report, command: str, started: str, took: float) -> str:
    r = report.rows
    return f"""# Benchmarks

Measured by `{command}` on {started} ({took:.0f} s), on {machine()}.
Loopback only; the clients run in a separate process.  Rerun the command to
reproduce; numbers from a shared machine vary from run to run (the CPU
figures by ±20 % between runs here).

Three servers are measured beside anse-hw, on the same pseudo-terminal TFmini,
parser, gpiozero motor and event JSON:

- **baseline**: the seed backend's design (benchmarks/baseline.py): one
  coroutine per reading that broadcasts with `for ws in clients: await
  ws.send(...)` and drives the motor after the sensor and world-model
  broadcasts.
- **minimal**: the floor of doing this in Python (benchmarks/minimal.py): one
  event loop reads the pty itself, builds the same `sensor` and `worldmodel`
  JSON and sends it with `websockets.broadcast()`; no outboxes, no
  back-pressure, no lock, no second thread.  At 100 and 1000 clients it is raw
  `broadcast()` fan-out capacity.
- **threaded**: minimal with the reading on its own thread, handed to the
  loop with `call_soon_threadsafe`, as anse-hw does so that a reflex never
  waits for the event loop: the price of that one choice.

## Targets

| target | measured | |
|---|---|---|
{targets(report)}

A missed target is explained here rather than hidden.  **CPU per reading with
clients**: the minimal server reads the sensor on its event loop; anse-hw reads
it on a thread of its own and hands each reading to the loop, which costs a
thread wake-up, a pipe write and a GIL hand-over per reading.  The "threaded"
anchor pays exactly that and nothing else, and at 100 readings/s anse-hw
stays close to it (CPU table, last column; 1.0–1.3× across runs during this
work, the machine's noise being of that size; at 10 readings/s the safety
monitor's tick, ten times a second whatever the sensor does, weighs more per
reading): what is left above the 1.2× is that hand-over, the
design's one deliberate cost, because it keeps the reflex arc off the event
loop (the minimal server's stop p99 grows to several ms at 500 clients, see
the reflex table).  With no client the hand-over does not happen at all, and
anse-hw costs less than the minimal server.  **Memory per client**: 15–16 KB
across runs here, against 13 KB for the seed design, whose connections have no
keepalive ping; the 2 KB difference is websockets' keepalive task per
connection (`server.ping_interval`), which finds dashboards that vanished
without closing.

## Reflex latency

A TFmini frame written into a pseudo-terminal → the motor's forward pin at 0 on
gpiozero's MockFactory (timestamps on CLOCK_MONOTONIC).  Sensor at {SENSOR_HZ} Hz:
far for 100 ms, close for 100 ms; each close is one measured stop.  The stalled
client completes the WebSocket handshake and never reads again.  p99 ratio:
baseline ÷ anse-hw.

{REFLEX_HEAD}
{chr(10).join(r.get("reflex", []))}

## CPU per reading

A constant far distance (so no reflex fires), the server's own CPU time over
a 10 s window (the process's, minus the thread that writes the frames),
divided by the readings.  The ratios are anse-hw ÷ minimal and anse-hw ÷
threaded.

{CPU_HEAD}
{chr(10).join(r.get("cpu", []))}

## Fan-out

Distinct far readings at {SENSOR_HZ} Hz (two events each: sensor + worldmodel).
Delivery latency: frame written → the `sensor` event received by a client
(sampled over up to 200 clients).  Messages/s: frames received by all clients.
`max_hz=10` clients ask for conflated telemetry at 10 Hz (`?max_hz=10`); the
baseline has no such option and sends them everything.

| clients | anse-hw p50 ms | p99 ms | msgs/s | baseline p50 ms | p99 ms | msgs/s | p99 ratio |
|---|---|---|---|---|---|---|---|
{chr(10).join(r.get("fanout", []))}

Against raw `websockets.broadcast()` (the minimal server), same scenario:

{BROADCAST_HEAD}
{chr(10).join(r.get("broadcast", []))}

## Cost

`anse-hw --sim` (one reading every 1.5 s) and the baseline on the same pace, as
separate processes; CPU as % of one core over the window, RSS from /proc.

| | anse-hw CPU | anse-hw RSS | baseline CPU | baseline RSS |
|---|---|---|---|---|
{chr(10).join(r.get("cost", []))}

## Where the time goes

Profiled with py-spy (`py-spy record --gil`, and per-thread CPU from
/proc/self/task) and by timing the pieces alone (`python -m
benchmarks.pieces`, the "Pieces" section below):

- **Per reading, in Python**: a few µs to parse a frame and run the engine,
  about 10 with events built, about as much again for their JSON; per
  client, one socket write per batch of frames built once.  The rest of a
  reading's cost is the kernel: waking a thread, `select`/`read` on the tty,
  the write that wakes the event loop, `epoll`, the socket writes.  On this
  virtual machine those dominate, which is why the per-reading figures move
  by ±20 % between runs.
- **Nobody listening**: the engine asks its audience (a connected or
  connecting client, a recorder, an MQTT bridge) under its lock before it
  builds an event; with none it builds no dict, encodes nothing and does not
  wake the event loop, only counts the seq number.  This is why anse-hw costs
  less than the minimal server with no client: the minimal server still
  encodes and broadcasts to nobody.
- **Per client**: a client that keeps up is written to directly when a batch
  is published, as `broadcast()` does, but with one socket write per batch
  instead of one per event; only a client whose transport is paused (or one
  that asked for `max_hz`) gets an outbox and a writer task, created the
  first time it needs them.  That is what brought the fan-out to
  `broadcast()`'s throughput and the memory per client down.
- **The floor above minimal**: the reader thread.  Every reading wakes a
  second thread and hands over to the loop (`call_soon_threadsafe`: a pipe
  write, an `epoll` wake-up, the GIL passed between threads).  The threaded
  anchor pays the same and shows what is left for anse-hw's own work
  (validation, world model, guards, outbox bookkeeping).  It is the design's
  one deliberate cost: it keeps the reflex arc off the event loop, so the
  stop latency does not grow with the number of clients, as the minimal
  server's does in the reflex table.
- **Reflex arc.**  From the frame arriving in the serial reader to the pin at
  0 is about 0.2 ms (parse, world model, reflex, gpiozero pin write); the rest
  of the p50 is the kernel moving the bytes through the pseudo-terminal and
  waking the reader thread.  The tail under load is that wake-up: with both
  cores busy (the fan-out on one, 500 clients in the client process on the
  other), an ordinary thread can wait several milliseconds for a CPU.  The
  sensor threads therefore run at SCHED_FIFO where permitted, and the GIL
  switch interval is 0.5 ms instead of 5 ms.
- **Baseline reflex.**  The seed design drives the motor only after the sensor
  and world-model events were sent to every client, one `await` at a time: its
  latency grows with the number of clients, and once the stalled client's
  buffers are full every `send` to it waits forever, so stops never happen.
- **1000 clients at `max_hz=10`.**  Telemetry comes from one shared
  latest-value table on each client's own 100 ms timer, so publishing costs
  nothing per such client.  The p99 includes the client process's own event
  loop, which serves all 1000 connections on one core.
- **Memory.**  The floor is the interpreter with asyncio and websockets
  (see "Pieces": asyncio loads OpenSSL, websockets loads importlib.metadata).
  gpiozero, prometheus_client, mcap, aiomqtt, the service installer,
  statistics and difflib are imported only by a configuration that uses them;
  what remains is PyYAML, pyserial, argparse and anse-hw's own modules.
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    parser.add_argument("--only", choices=("reflex", "cpu", "fanout", "cost"), action="append")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    keep_state_aside()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("anse_hw").setLevel(logging.ERROR)
    only = set(args.only or ("reflex", "cpu", "fanout", "cost"))
    report = Report()
    started, began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    if "reflex" in only:
        run_reflex(report, cycles=10 if args.quick else 60)
        repeat_reflex(report, cycles=10 if args.quick else 60, runs=0 if args.quick else 2)
    if "cpu" in only:
        run_cpu(report, seconds=3 if args.quick else 10)
    if "fanout" in only:
        run_fanout(report, seconds=2 if args.quick else 5)
    if "cost" in only:
        run_cost(report, clients=100 if args.quick else 1000, seconds=3 if args.quick else 10)
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
    text = write_markdown(report, command, started, time.monotonic() - began)
    output = Path(args.output)
    output.write_text(keep_other_sections(output, text))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
