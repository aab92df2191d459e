"""anse-hw on Pi-class CPUs: two proxies for a small board, three full runs.

    sudo python -m benchmarks.piclass         # three runs, rewrites the "Pi-class" section
    sudo python -m benchmarks.piclass --runs 1 --seconds 5 --no-write   # a quick look

The daemon runs as its own process (`python -m anse_hw --config ...`), so this
harness knows it only by its public surfaces: its config, its banner, the
WebSocket stream, and the mock pin factory's state file, which it watches
with inotify to time each stop.  Two proxies, because neither is a Pi (the
section this writes says what each does and does not model):

- **busy core**: the daemon pinned to one core beside busy SCHED_OTHER
  processes; its SCHED_FIFO sensor thread still preempts them.
- **CPU quota**: the daemon in a cgroup v1 `cpu` group limited to a share
  of one core per 10 ms period.

Needs root, two cores, and the cgroup v1 `cpu` controller at
/sys/fs/cgroup/cpu; on cgroup v2 only it says so and exits.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    ROOT,
    Clients,
    deliveries,
    first_stops,
    machine,
    pace,
    percentile,
    stop_latencies,
)
from benchmarks.markdown import replace_section

CPU_V1 = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 10_000
#: The core the daemon is confined to in the busy-core proxy (the last one).
CONTENDED = (os.cpu_count() or 1) - 1
HOGS = 2
#: Above the daemon's sensor threads (10): the harness must not be the one that waits.
HARNESS_PRIORITY = 20
FORWARD_PIN = "GPIO17"
FRAME = 9  # bytes in a TFmini frame
LISTENING = re.compile(r"WebSocket server running on ws://\S+:(\d+)\n")
REALTIME = "run at real-time priority"
CONFIG = """
server: {{host: 127.0.0.1, port: 0, max_clients: 100}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: lidar, driver: serial, port: {device}, protocol: tfmini, max_age: 5}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.6}}
reflexes:
  - {{name: proximity_safeguard, sensor: lidar, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: lidar, above: 15, actuator: movement, command: move}}
"""


# ---------------------------------------------------------------- the proxies


@contextlib.contextmanager
def unconfined() -> Iterator[list[str]]:
    """Every core, no limit: the reference row."""
    yield ["taskset", "-c", f"0-{CONTENDED}"]


@contextlib.contextmanager
def busy_core() -> Iterator[list[str]]:
    """One core shared with HOGS busy processes; the daemon's command prefix."""
    hogs = [
        subprocess.Popen(["taskset", "-c", str(CONTENDED), "yes"], stdout=subprocess.DEVNULL)
        for _ in range(HOGS)
    ]
    try:
        yield ["taskset", "-c", str(CONTENDED)]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def quota(share: float) -> Callable[[], contextlib.AbstractContextManager[list[str]]]:
    """A cgroup v1 cpu group limited to `share` of one core; the prefix puts
    the daemon (every thread it will start) in it before it runs."""

    @contextlib.contextmanager
    def confine() -> Iterator[list[str]]:
        group = CPU_V1 / f"anse-bench-{os.getpid()}"
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * share)))
        try:
            yield [
                "taskset",
                "-c",
                f"0-{CONTENDED}",
                "sh",
                "-c",
                'echo $$ > "$0" && exec "$@"',
                str(group / "cgroup.procs"),
            ]
        finally:
            for task in (group / "cgroup.procs").read_text().split():  # outlived the daemon
                (CPU_V1 / "cgroup.procs").write_text(task)
            group.rmdir()

    return confine


@dataclass(frozen=True)
class Row:
    proxy: str
    confine: Callable[[], contextlib.AbstractContextManager[list[str]]]
    hz: int
    dashboards: int
    max_hz: float = 0
    #: No daemon: the floor, a SCHED_FIFO reader alone (benchmarks/ptyreader.py).
    floor: bool = False

    @property
    def clients(self) -> str:
        if self.floor:
            return "no daemon: the frame read alone"
        if not self.dashboards:
            return "none"
        rate = f"max_hz={self.max_hz:g}" if self.max_hz else "full rate"
        return f"{self.dashboards} at {rate}"


BUSY = f"one core, {HOGS} × `yes` beside it"
BUSY_ROWS = [Row(BUSY, busy_core, 100, 0, floor=True)] + [
    Row(BUSY, busy_core, hz, dashboards, max_hz)
    for hz in (10, 100)
    for dashboards, max_hz in ((0, 0), (3, 0), (3, 10))
]
QUOTA_ROWS = [
    Row("every core, no limit", unconfined, 10, 3),
    Row("every core, no limit", unconfined, 100, 3),
    Row("25 % of a core", quota(0.25), 10, 3),
    Row("25 % of a core", quota(0.25), 100, 3),
    Row("10 % of a core", quota(0.10), 10, 3),
    Row("10 % of a core", quota(0.10), 100, 3),
    Row("10 % of a core", quota(0.10), 100, 3, 10),
]
#: The issue's target: (row, stop p99 limit in ms).
TARGET = (Row(BUSY, busy_core, 100, 3), 2.0)


# ---------------------------------------------------------------- the rig


def realtime_harness() -> bool:
    """This thread, and the threads it starts, at SCHED_FIFO; its child
    processes (daemon, clients, `yes`) start as ordinary ones."""
    try:
        os.sched_setscheduler(
            0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(HARNESS_PRIORITY)
        )
    except OSError:
        return False
    return True


def tfmini_frame(cm: int) -> bytes:
    """A TFmini frame as the sensor sends it (strength 1000, checksum last)."""
    body = b"\x59\x59" + cm.to_bytes(2, "little") + (1000).to_bytes(2, "little") + b"\0\0"
    return body + bytes([sum(body) & 0xFF])  # FRAME bytes


class PtySensor:
    """A TFmini on a pseudo-terminal; the daemon opens the device by name."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.device = os.ttyname(self.slave)
        self.written: list[float] = []

    def write(self, cm: int) -> float:
        now = time.monotonic()
        os.write(self.master, tfmini_frame(cm))
        self.written.append(now)
        return now

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class PinWatch:
    """The moments the forward pin fell to 0, seen in the mock pin factory's
    state file.

    At every pin change the factory writes the new levels to a temporary file
    and renames it into place.  inotify wakes this thread (at SCHED_FIFO, on
    a core of its own) when the temporary file is created, right after the
    pin changed in memory; the rename says which temporary file it was, and
    its content whether that change was the forward pin falling to 0.  So the
    file write (a few hundred µs here) is not counted, only the creation of
    the file and this thread's wake-up."""

    IN_CREATE, IN_MOVED_FROM, IN_MOVED_TO = 0x100, 0x40, 0x80
    HEADER = struct.Struct("iIII")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stops: list[float] = []
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        mask = self.IN_CREATE | self.IN_MOVED_FROM | self.IN_MOVED_TO
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(path.parent), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {path.parent}")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pin-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        created: dict[str, float] = {}  # temporary file → when it appeared
        renamed: dict[int, float] = {}  # rename cookie → when its file appeared
        level = None
        while not self._done.is_set():
            if not select.select([self.fd], [], [], 0.1)[0]:
                continue
            now = time.monotonic()
            for mask, cookie, name in self._events(os.read(self.fd, 65536)):
                if mask & self.IN_CREATE:
                    created[name] = now
                elif mask & self.IN_MOVED_FROM:
                    renamed[cookie] = created.pop(name, now)
                elif mask & self.IN_MOVED_TO and name == self.path.name:
                    changed = renamed.pop(cookie, now)
                    state = json.loads(self.path.read_text()).get(FORWARD_PIN, {}).get("state")
                    if state == 0 and level:
                        self.stops.append(changed)
                    level = state

    def _events(self, buffer: bytes) -> Iterator[tuple[int, int, str]]:
        offset = 0
        while offset < len(buffer):
            _, mask, cookie, length = self.HEADER.unpack_from(buffer, offset)
            offset += self.HEADER.size
            yield mask, cookie, buffer[offset : offset + length].rstrip(b"\0").decode()
            offset += length

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        os.close(self.fd)


class DaemonProcess:
    """`python -m anse_hw --config robot.yaml` behind a confining prefix."""

    def __init__(self, prefix: list[str], config: Path, work: Path) -> None:
        self.log_path = work / "daemon.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "anse_hw", "--config", str(config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "STATE_DIRECTORY": str(work / "state")},
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_port(self, timeout: float = 120) -> int:
        """The port the daemon says it listens on (a tenth of a core starts slowly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited early:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"the daemon did not listen within {timeout:g} s:\n{self.log()}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def drive(sensor: PtySensor, hz: int, seconds: float) -> tuple[list[float], dict[float, float]]:
    """Far and close in turn, a tenth of a second each (at least one frame):
    the first frame of every close (to time a stop) and every far value
    with its write time (to time its delivery)."""
    per_phase = max(1, round(hz / 10))
    far = iter(range(20, 10_000))
    pace(sensor, [next(far) for _ in range(per_phase * 5)], hz)  # the motor starts
    closes: list[float] = []
    writes: dict[float, float] = {}
    for _ in range(int(seconds * hz / (2 * per_phase))):
        values = [next(far) for _ in range(per_phase)]
        writes.update(zip(map(float, values), pace(sensor, values, hz), strict=True))
        closes.append(pace(sensor, [5] * per_phase, hz)[0])
    return closes, writes


def measure_floor(row: Row, seconds: float) -> dict:
    """The stop's floor under the row's proxy: each first close frame written
    → read in full by a SCHED_FIFO thread of another process, no daemon."""
    sensor = PtySensor()
    with row.confine() as prefix:
        reader = subprocess.Popen(
            [*prefix, sys.executable, "-m", "benchmarks.ptyreader", sensor.device],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            reader.stdout.readline()  # it has the device open
            closes, _ = drive(sensor, row.hz, seconds)
        finally:
            sensor.close()  # it reads EIO, prints its reads and exits
            reads = [line.split() for line in reader.stdout.read().splitlines()]
            reader.wait()
    arrived, total = [], 0  # when each whole frame had been read
    for when, count in reads:
        total += int(count)
        arrived += [float(when)] * (total // FRAME - len(arrived))
    stops = [(arrived[sensor.written.index(t)] - t) * 1000 for t in closes]
    return {
        "stops": stops,
        "missed": 0,
        "closes": len(closes),
        "delivery": [],
        "expected": 0,
        "errors": 0,
    }


def event_loop_times(pid: int) -> tuple[float, float]:
    """The daemon's main thread (its event loop): CPU time and time spent
    runnable but waiting for a CPU, in seconds (/proc schedstat).  On a busy
    core the second is what delays every event to the dashboards, and any
    stop that needs the interpreter lock this thread holds."""
    ran, waited, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(ran) / 1e9, int(waited) / 1e9


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """py-spy sampling the daemon (a measurement tool: `pip install py-spy`):
    which thread holds the interpreter lock, and doing what, without ever
    pausing the daemon.  It runs on the harness's core."""
    return subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds))),
            *("--rate", "1000", "--gil", "--threads", "--nonblocking"),
            *("--format", "raw", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def gil_holders(raw: Path, top: int = 5) -> str:
    """py-spy's raw samples summed per thread and per innermost frames."""
    threads: dict[str, int] = {}
    frames: dict[str, dict[str, int]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *calls = stack.split(";")
        threads[thread] = threads.get(thread, 0) + int(count)
        where = " < ".join(call.split(" (")[0] for call in calls[:-4:-1])
        frames.setdefault(thread, {})
        frames[thread][where] = frames[thread].get(where, 0) + int(count)
    lines = []
    for thread, count in sorted(threads.items(), key=lambda item: -item[1]):
        lines.append(f"{thread}: {count} ms holding the lock")
        ranked = sorted(frames[thread].items(), key=lambda item: -item[1])[:top]
        lines += [f"    {n:6d}  {where}" for where, n in ranked]
    return "\n".join(lines)


class ReaderStates:
    """What the daemon's serial thread is doing, sampled every 0.2 ms from
    /proc (…/task/<tid>/syscall): running, waiting in `futex` (for a lock:
    the interpreter's or the engine's; the thread takes no other), or in
    any other system call (waiting for its port).  A stop's time spent in
    `futex` is time the real-time thread could have run but another thread
    held the lock it needed."""

    FUTEX = {"x86_64": "202", "aarch64": "98"}[os.uname().machine]

    def __init__(self, pid: int) -> None:
        self.samples: list[tuple[float, str]] = []
        self.tid = self._reader(pid)
        self.path = Path(f"/proc/{pid}/task/{self.tid}/syscall")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="reader-states", daemon=True)
        self._thread.start()

    @classmethod
    def _reader(cls, pid: int) -> str:
        """The serial reader: the SCHED_FIFO thread waiting for its port (the
        other one, the monitor, waits on a condition: `futex`)."""

        def waiting_for_port(task: Path) -> bool:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            call = (task / "syscall").read_text().split(" ", 1)[0]
            return fields[38] == str(os.SCHED_FIFO) and call not in (cls.FUTEX, "running", "-1")

        return next(t for t in Path(f"/proc/{pid}/task").iterdir() if waiting_for_port(t)).name

    def _sample(self) -> None:
        while not self._done.is_set():
            call = self.path.read_text().split(" ", 1)[0].strip()
            # "-1": in user space, between system calls.
            kind = (
                "running" if call in ("running", "-1") else "lock" if call == self.FUTEX else "port"
            )
            self.samples.append((time.monotonic(), kind))
            time.sleep(0.0002)

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def split(self, windows: list[tuple[float, float]]) -> dict[str, float]:
        """ms spent in each state inside the windows, summed."""
        spent = {"running": 0.0, "lock": 0.0, "port": 0.0}
        times = [t for t, _ in self.samples]
        for start, end in windows:
            first = bisect.bisect_left(times, start)
            last = bisect.bisect_left(times, end)
            for (t, kind), (following, _) in zip(
                self.samples[first:last], self.samples[first + 1 : last + 1], strict=False
            ):
                spent[kind] += (min(following, end) - t) * 1000
        return spent


def reader_split(closes: list[float], stops: list[float], states: ReaderStates) -> str:
    """Where the serial thread was during the stops: all of them, and the
    slowest tenth."""
    windows = sorted(
        ((c, s) for c, s in zip(closes, first_stops(closes, stops), strict=True) if s),
        key=lambda w: w[1] - w[0],
    )
    lines = []
    for label, chosen in (
        ("all stops", windows),
        ("the slowest tenth", windows[-len(windows) // 10 :]),
    ):
        spent = states.split(chosen)
        total = sum(spent.values()) or 1
        lines.append(
            f"{label} ({len(chosen)}, {sum(e - s for s, e in chosen) * 1000:.1f} ms): "
            + ", ".join(f"{k} {v:.1f} ms ({v / total:.0%})" for k, v in spent.items())
        )
    return f"serial thread ({states.tid}) during the stops: " + "; ".join(lines)


def measure(row: Row, seconds: float, profile: Path | None = None) -> dict:
    """One row, once: a fresh daemon under the row's proxy (and py-spy
    recording it into `profile`, if given)."""
    if row.floor:
        return measure_floor(row, seconds)
    work = Path(tempfile.mkdtemp(prefix="anse-piclass-", dir="/dev/shm"))
    sensor = PtySensor()
    pins = work / "pins.json"
    config = work / "robot.yaml"
    config.write_text(CONFIG.format(pins=pins, device=sensor.device))
    watch = PinWatch(pins)
    try:
        with row.confine() as prefix:
            daemon = DaemonProcess(prefix, config, work)
            try:
                port = daemon.wait_port()
                swarm = None
                if row.dashboards:
                    swarm = Clients(port, row.dashboards, max_hz=row.max_hz, record=row.dashboards)
                    swarm.start()
                before, began = event_loop_times(daemon.proc.pid), time.monotonic()
                spy = profile and py_spy(daemon.proc.pid, seconds, profile)
                states = profile and ReaderStates(daemon.proc.pid)
                closes, writes = drive(sensor, row.hz, seconds)
                if spy:
                    spy.wait()
                    states.close()
                time.sleep(1.0)  # what is still on its way
                summary, arrivals = swarm.finish() if swarm else ({"errors": 0}, [])
                after, took = event_loop_times(daemon.proc.pid), time.monotonic() - began
            finally:
                daemon.stop()
        stops, missed = stop_latencies(closes, watch.stops)
        if profile:
            print(reader_split(closes, watch.stops, states))
        return {
            "stops": stops,
            "missed": missed,
            "closes": len(closes),
            "delivery": deliveries(arrivals, writes) if swarm else [],
            "expected": len(writes) * row.dashboards,
            "errors": summary["errors"],
            "realtime": REALTIME in daemon.log(),
            "loop_cpu": (after[0] - before[0]) / took * 1000,
            "loop_wait": (after[1] - before[1]) / took * 1000,
        }
    finally:
        watch.close()
        sensor.close()
        shutil.rmtree(work)


# ---------------------------------------------------------------- the report


def spread(values: list[float], digits: int) -> str:
    """The median of the runs and their min–max."""
    if not values:
        return "—"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def table_row(row: Row, runs: list[dict], proxy_column: bool) -> str:
    def figure(key: str, q: float | None) -> list[float]:
        taken = [r[key] for r in runs if r[key]]
        return [max(v) if q is None else percentile(v, q) for v in taken]

    received = " · ".join(str(len(r["delivery"])) for r in runs)
    missed = [
        f"run {i}: {r['missed']} of {r['closes']}" for i, r in enumerate(runs, 1) if r["missed"]
    ]
    errors = sum(r["errors"] for r in runs)
    cells = [
        *([row.proxy] if proxy_column else []),
        str(row.hz),
        row.clients,
        spread(figure("stops", 50), 2),
        spread(figure("stops", 99), 2),
        spread(figure("stops", None), 2),
        "; ".join(missed) or "none",
        spread(figure("delivery", 50), 1),
        spread(figure("delivery", 99), 1),
        f"{received} of {runs[0]['expected']}" if row.dashboards else "—",
        "—" if row.floor else spread([r["loop_cpu"] for r in runs], 0),
        "—" if row.floor else spread([r["loop_wait"] for r in runs], 0),
    ]
    if errors:
        cells[-1] += f" ({errors} client errors)"
    return f"| {' | '.join(cells)} |"


def verdict(runs: list[dict], limit: float) -> tuple[int, str]:
    """How many runs met the target, and each run's p99 and deliveries."""
    met, shown = 0, []
    for r in runs:
        p99 = percentile(r["stops"], 99) if r["stops"] else float("inf")
        whole = not r["missed"] and not r["errors"] and len(r["delivery"]) == r["expected"]
        met += p99 <= limit and whole
        shown.append(
            f"{p99:.2f} ms, {len(r['delivery'])} of {r['expected']} events"
            + (f", {r['missed']} stops missing" if r["missed"] else "")
        )
    return met, "; ".join(shown)


HEAD = (
    "readings/s | dashboards | stop p50 ms | stop p99 ms | stop max ms | stops missing | "
    "delivery p50 ms | delivery p99 ms | events received (each run) | "
    "event loop CPU ms/s | event loop waiting ms/s"
)


def section(results: dict[Row, list[dict]], command: str, started: str, loads: list[str]) -> str:
    runs = len(loads)
    row, limit = TARGET
    met, detail = verdict(results[row], limit)
    realtime: dict[str, bool] = {}
    for each, taken in results.items():
        if each.floor:
            continue
        realtime[each.proxy] = realtime.get(each.proxy, True) and all(r["realtime"] for r in taken)
    fifo = "; ".join(f"{proxy}: {'yes' if ok else 'no'}" for proxy, ok in realtime.items())
    busy = "\n".join(table_row(r, results[r], False) for r in BUSY_ROWS)
    quotas = "\n".join(table_row(r, results[r], True) for r in QUOTA_ROWS)
    return f"""Measured by `{command}` on {started}, on {machine()}:
{runs} full runs (every row below, {runs} times over), the load average (1 min)
before each run being {", ".join(loads)} (other work shares this machine).  Each
figure is the median of the {runs} runs and, in brackets, the lowest and
highest.  The daemon's sensor threads at SCHED_FIFO (its own banner): {fifo}.

**Target** (busy core, 100 readings/s, 3 full-rate dashboards: stop p99 ≤
{limit:g} ms and every event delivered, in every run): met in {met} of {runs}
runs ({detail}).

The daemon runs as a process of its own, a TFmini on a pseudo-terminal, its
motor on the mock pin factory.  Far and close readings in turn, a tenth of a
second each.  **Stop**: the first close frame written → the motor's forward
pin at 0, seen when the mock pin factory creates the file that carries the
pin's new level (inotify; the rest of that file write, which a Pi does not
do, is not counted).  **Delivery**: a far reading written → its `sensor` event
at a dashboard; with `?max_hz=10` a dashboard gets at most ten readings a
second by design, so it receives fewer.  **Event loop**: the daemon's main
thread, from /proc schedstat: the CPU it used, and the time it was ready to
run but waited for a CPU, per second of the run.  The harness and the
dashboards run on the other core; the harness's threads at SCHED_FIFO.

### One core shared with busy processes

The daemon pinned to core {CONTENDED} (taskset) beside {HOGS} × `yes`, ordinary
SCHED_OTHER processes that never sleep.  It models a slow, contended CPU on
which the real-time sensor thread still comes first: when a frame arrives it
preempts the busy processes at once, while the event loop (an ordinary
thread) gets its share of the core in turns of a few milliseconds, as it
would on a Pi Zero 2 W that has other work to do.  It does not model a
slower CPU: every instruction runs at this machine's speed, caches and
memory are this machine's (`yes` barely touches them), and the reflex arc
itself costs what it costs here (a Pi Zero 2 W core does very roughly a tenth
of this one's Python work).  The first row is the floor: the same frames read by a SCHED_FIFO thread
of another process on the same busy core (benchmarks/ptyreader.py), no
daemon: what the kernel takes to move a frame through the pseudo-terminal
and wake a reader.

| {HEAD} |
|{"---|" * 11}
{busy}

### A CPU quota

Every thread of the daemon in a cgroup v1 `cpu` group allowed a share of one
core per {PERIOD_US // 1000} ms period (cpu.cfs_quota_us).  It models a budget:
the daemon runs at full speed until its share of the period is spent, then
every one of its threads is throttled until the next period, so a stop can
wait up to the rest of a period.  It does not model real-time preemption at
all: this kernel schedules real-time threads per group, and a new group has
no real-time budget (cpu.rt_runtime_us 0), so SCHED_FIFO is refused in it
and the daemon's sensor threads run as ordinary threads, throttled with the
rest (a SCHED_FIFO thread would not be throttled by the quota at all, only
by the group's real-time budget).  Nor does it model a slow CPU: a burst is
as fast as on this machine, so the medians show this machine's speed and
only the tail shows the budget.  The first rows have no limit (every core,
nothing beside the daemon but the machine's other work).

| CPU | {HEAD} |
|{"---|" * 12}
{quotas}
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        type=Path,
        help="only the target's row, once, with py-spy recording the daemon into FILE",
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or not (CPU_V1 / "cpu.cfs_quota_us").exists():
        sys.exit("needs root and the cgroup v1 cpu controller at /sys/fs/cgroup/cpu")
    if CONTENDED < 1:
        sys.exit("needs two cores: one for the daemon, one for the harness and its clients")
    os.sched_setaffinity(0, set(range(CONTENDED)))
    realtime_harness()
    if args.py_spy:
        runs = [measure(TARGET[0], args.seconds, args.py_spy)]
        print(table_row(TARGET[0], runs, True))
        print(gil_holders(args.py_spy))
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = BUSY_ROWS + QUOTA_ROWS
    results: dict[Row, list[dict]] = {row: [] for row in rows}
    loads = []
    for run in range(1, args.runs + 1):
        loads.append(f"{os.getloadavg()[0]:.2f}")
        print(f"run {run} of {args.runs}, load average {loads[-1]}", flush=True)
        for row in rows:
            results[row].append(measure(row, args.seconds))
            print(table_row(row, results[row][-1:], True), flush=True)
    command = (
        "sudo python -m benchmarks.piclass"
        + (f" --runs {args.runs}" if args.runs != 3 else "")
        + (f" --seconds {args.seconds:g}" if args.seconds != 20 else "")
    )
    text = section(results, command, started, loads)
    print(text)
    if not args.no_write:
        replace_section(Path(args.output), "Pi-class", text)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
