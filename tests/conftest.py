"""Shared helpers: start `anse-hw` as a real process, talk to it over a real
WebSocket, and wait on conditions with deadlines instead of sleeps."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from gpiozero.pins.mock import MockFactory, MockPin, MockTriggerPin
from websockets.asyncio.client import connect

from anse_hw import config as configuration
from anse_hw.drivers.pins import read_pin_states
from anse_hw.engine import Engine
from anse_hw.readings import Sample, SensorDriver

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "anse_hw" / "examples"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CONTRACT = {
    "sensor": {"sensor_name": str, "sensor_type": str, "value": (int, float)},
    "worldmodel": {
        "distance_cm": (int, float, type(None)),
        "safe": bool,
        "actuator_state": str,
        "last_reflex": (str, type(None)),
        "total_events": int,
    },
    "reflex": {"reflex_name": str, "condition": str, "triggered": bool},
    "actuator": {"actuator_name": str, "actuator_type": str, "state": str},
}


class Recorder:
    """Stands where the engine stands: takes a driver's samples, faults and crashes."""

    def __init__(self) -> None:
        self.samples: queue.Queue[Sample] = queue.Queue()
        self.faults: list[tuple[str, bool]] = []
        self.crashes: list[BaseException] = []

    def start(self, sensor: SensorDriver) -> None:
        sensor.start(
            self.samples.put,
            lambda text, active: self.faults.append((text, active)),
            self.crashes.append,
        )

    def take(self, count: int, timeout: float = 30.0) -> list[Sample]:
        return [self.samples.get(timeout=timeout) for _ in range(count)]


def engine_for(config_text: str) -> tuple[Engine, list[dict[str, Any]]]:
    """A real engine on the drivers of `config_text` (no GPIO), not started: the test
    feeds it samples itself.  Published events land in the returned list."""
    from anse_hw.app.devices import build_actuators, build_sensors

    cfg = configuration.parse(config_text)
    published: list[dict[str, Any]] = []
    crashes: list[BaseException] = []
    engine = Engine(
        cfg, build_sensors(cfg, None), build_actuators(cfg, None), published.extend, crashes.append
    )
    return engine, published


def free_ports(count: int = 1) -> list[int]:
    """`count` different ports that were free a moment ago.  Only for servers
    that must be told their port (mosquitto, nginx, a container whose
    healthcheck reads it from the config): start those with `on_free_ports`,
    which retries when another process took the port first.  The daemon
    picks its own with `port: 0`."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:  # all bound at once: no two alike
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """One port for the benchmarks' servers; tests use port 0 or on_free_ports."""
    return free_ports(1)[0]


class PortTaken(Exception):
    """A server we started could not bind the port chosen for it."""


def on_free_ports(start: Callable[..., T], count: int = 1, attempts: int = 5) -> T:
    """`start(*ports)` on `count` ports free a moment ago; another process (a
    test running beside this one) may bind one before the server does, and
    `start` then raises PortTaken: new ports, another try."""
    for _ in range(attempts - 1):
        try:
            return start(*free_ports(count))
        except PortTaken:
            pass
    return start(*free_ports(count))


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.01,
) -> Any:
    """Poll `condition` until it returns something truthy, or fail at the deadline
    (generous by default: the machines that run this are shared and busy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def check_contract(event: dict[str, Any]) -> None:
    """docs/protocol.md: envelope, keys, JSON types, timestamp format."""
    assert set(event) >= {"type", "timestamp", "data"}, event
    assert event["type"] in CONTRACT, event
    assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
    for key, kind in CONTRACT[event["type"]].items():
        assert key in event["data"], (key, event)
        value = event["data"][key]
        assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), (
            key,
            value,
            event,
        )


def write_config(directory: Path, text: str, name: str = "robot.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def fast_sim_config(
    port: int,
    interval: float = 0.05,
    extra_sensor: str = "",
    actuator: str = "{name: movement, driver: sim}",
) -> str:
    return f"""
server: {{host: 127.0.0.1, port: {port}}}
sensors:
  - {{name: distance_sensor, driver: sim, interval: {interval}{extra_sensor}}}
actuators:
  - {actuator}
reflexes:
  - {{name: proximity_safeguard, sensor: distance_sensor, below: 10, actuator: movement,
      command: stop}}
  - {{name: clear_to_move, sensor: distance_sensor, above: 15, actuator: movement,
      command: move}}
"""


#: A robot of every kind on fakes: a distance, a bumper, a temperature that
#: crosses the fan's thresholds, a humidity, a motor and a fan.
KINDS = """
server: {{host: 127.0.0.1, port: {port}}}
sensors:
  - {{name: front, driver: sim, interval: 0.1}}
  - {{name: bumper, type: binary, driver: sim, interval: 0.1,
      profile: script, values: [false, false, true, true, false, false]}}
  - {{name: driver_temp, type: temperature, driver: sim, interval: 0.1,
      profile: script, values: [38, 42, 47, 52, 44, 39, 36]}}
  - {{name: air, type: humidity, driver: sim, interval: 0.2}}
actuators:
  - {{name: movement, driver: sim}}
  - {{name: fan, type: output, driver: sim}}
reflexes:
  - {{name: proximity_safeguard, sensor: front, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: front, above: 15, actuator: movement, command: move}}
  - {{name: bumped, sensor: bumper, active: true, actuator: movement, command: stop}}
  - {{name: fan_on, sensor: driver_temp, above: 45, actuator: fan, command: on}}
  - {{name: fan_off, sensor: driver_temp, below: 40, actuator: fan, command: off}}
"""


def hardware_config(
    port: int, device: str, pins: Path, max_age: float = 0.5, sensor_extra: str = ""
) -> str:
    """A TFmini on `device` and an L298N-style motor on the mock pin factory."""
    return f"""
server: {{host: 127.0.0.1, port: {port}}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: lidar, driver: serial, port: {device}, protocol: tfmini,
     max_age: {max_age}{sensor_extra}}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, enable: 12, speed: 0.6}}
reflexes:
  - {{name: proximity_safeguard, sensor: lidar, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: lidar, above: 15, actuator: movement, command: move}}
"""


def pin(pins_file: Path, name: str) -> float | None:
    """A pin's level as the daemon's mock pin factory last wrote it."""
    return read_pin_states(pins_file).get(name, {}).get("state")


class ExactEchoFactory(MockFactory):
    """gpiozero's MockFactory with a clock of its own: an HC-SR04 on it
    measures exactly the distance the test set, however loaded the machine.
    gpiozero's MockTriggerPin sleeps for the echo and stamps its edges with
    the wall clock, so a busy machine stretches the echo into a longer
    distance.  Here the echo pin's edges carry this factory's clock, which
    only an ExactEchoPin moves."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"pin_class": ClockedPin, **kwargs})
        self.clock = 0.0

    def ticks(self) -> float:
        return self.clock


class ClockedPin(MockPin):
    """A mock pin whose edges are stamped with its factory's clock."""

    def _call_when_changed(self) -> None:
        super(MockPin, self)._call_when_changed(self._factory.ticks(), self._state)


class ExactEchoPin(MockTriggerPin):
    """A trigger pin that answers each pulse at once, on the triggering thread
    (so gpiozero's 100 ms wait for the echo never runs out on a slow machine),
    with an echo exactly `echo_time` long on its factory's clock."""

    def _set_state(self, value: bool) -> None:
        MockPin._set_state(self, value)
        if value:
            self.echo_pin.drive_high()
            self._factory.clock += self.echo_time
            self.echo_pin.drive_low()


def daemon_env(directory: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test daemon: its state lives in `directory`/state,
    as it would in systemd's StateDirectory, never in /var/lib/anse-hw."""
    return {**os.environ, "STATE_DIRECTORY": str(directory / "state"), **(extra or {})}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`anse-hw` as a user runs it; a daemon it starts keeps its state in a
    fresh directory, never in /var/lib/anse-hw."""
    return subprocess.run(
        [sys.executable, "-m", "anse_hw", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=daemon_env(Path(tempfile.mkdtemp(prefix="anse-hw-cli-"))),
    )


#: The daemon's line saying where it listens (the port it chose for port 0).
LISTENING = re.compile(r"WebSocket server running on ws://\S+:(\d+)\n")
#: The daemon's line saying where this robot's state (latch, token) lives.
STATE = re.compile(r"✓ State: (\S+) \(")


class DaemonProcess:
    """`anse-hw` as a child process, with its log captured to a file."""

    def __init__(
        self, args: list[str], port: int | None, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.port = port
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anse_hw", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=daemon_env(log.parent, env),
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_listening(self, timeout: float = 30.0) -> DaemonProcess:
        """Until the daemon says it listens (it says so once its engine runs).
        The port is the one it prints: with `port: 0` the one it chose.  Its
        own line, not a connection test: another process on the same port
        would pass that while this daemon failed to bind."""

        def listening() -> re.Match | None:
            assert self.proc.poll() is None, f"daemon exited early:\n{self.log()}"
            return LISTENING.search(self.log())

        port = int(wait_for(listening, timeout, "the daemon to listen").group(1))
        assert self.port in (None, 0, port), f"asked for port {self.port}, listens on {port}"
        self.port = port
        return self

    @property
    def state(self) -> Path:
        """This robot's state directory, as the daemon's banner names it."""
        found = wait_for(lambda: STATE.search(self.log()), what="the State: line")
        return Path(found.group(1))

    def signal(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_daemon(tmp_path):
    started: list[DaemonProcess] = []

    def start(
        config_text: str | None = None,
        port: int | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> DaemonProcess:
        argv = list(args)
        if config_text is not None:
            argv = [
                "--config",
                str(write_config(tmp_path, config_text, f"robot{len(started)}.yaml")),
                *argv,
            ]
        daemon = DaemonProcess(argv, port, tmp_path / f"daemon{len(started)}.log", env)
        started.append(daemon)
        return daemon.wait_listening() if wait else daemon

    yield start
    for daemon in started:
        daemon.stop()


class StaticServer:
    """`python -m http.server` on the port it picks itself (0) and prints: the
    seed's way of serving the dashboard, or a page on another origin."""

    SERVING = re.compile(r"Serving HTTP on \S+ port (\d+) ")

    def __init__(self, directory: Path, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
            cwd=directory,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        def serving() -> re.Match | None:
            assert self.proc.poll() is None, log.read_text()
            return self.SERVING.search(log.read_text())

        try:
            self.port = int(wait_for(serving, 30, "http.server to listen").group(1))
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def static_server(tmp_path):
    started: list[StaticServer] = []

    def start(directory: Path) -> StaticServer:
        started.append(StaticServer(directory, tmp_path / f"http-server{len(started)}.log"))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def operator_url(daemon) -> str:
    """The URL the daemon printed, as a user would copy it (a whole line: one
    still being written is not read), with the token from the file it names:
    stderr is a file here, so the daemon does not print the token itself."""
    line = wait_for(
        lambda: next(
            (
                x
                for x in daemon.log().splitlines(keepends=True)
                if "Operator:" in x and x.endswith("\n")
            ),
            None,
        ),
        what="the Operator URL",
    )
    url = line.split("Operator:", 1)[1].strip()
    named = re.search(r"<the token in (.+)>$", url)
    assert named, f"the Operator line names where the token is: {url}"
    return url[: named.start()] + Path(named.group(1)).read_text().strip()


def stalled_client(port: int) -> socket.socket:
    """Completes the WebSocket handshake, then never reads again; a tiny
    receive buffer makes the daemon's side fill up quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    return sock


def http_get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def serves(url: str, context: ssl.SSLContext | None = None) -> bool:
    """`url` answers 200 now (for wait_for); nothing listening yet is False."""
    try:
        return http_get(url, context)[0] == 200
    except OSError:
        return False


async def collect(
    url: str, until: Callable[[list[dict]], bool], timeout: float = 30.0, **connect_kwargs: Any
) -> list[dict[str, Any]]:
    """Receive events until `until(events)` holds; fail at the deadline."""
    received: list[dict[str, Any]] = []
    async with connect(url, **connect_kwargs) as ws:
        async with asyncio.timeout(timeout):
            while not until(received):
                received.append(json.loads(await ws.recv()))
    return received


def actuator_states(received: list[dict]) -> list[str]:
    return [e["data"]["state"] for e in received if e["type"] == "actuator"]


class StreamWatcher:
    """A real WebSocket client on a background thread, recording every event,
    so synchronous tests can `wait_for` what the stream shows."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.events: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(),), daemon=True
        )
        self._connected = threading.Event()
        self._thread.start()
        assert self._connected.wait(30), f"could not connect to {url}"

    async def _run(self) -> None:
        try:
            async with connect(self.url) as ws:
                self._ws = ws
                # Ready once the snapshot is in: anything the test causes after
                # that arrives as events, not folded into the snapshot.
                self.events.append(json.loads(await ws.recv()))
                self._connected.set()
                async for message in ws:
                    self.events.append(json.loads(message))
        except Exception:  # the daemon went away: that is what some tests want
            pass
        finally:
            self.closed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == kind]

    def actuator_states(self) -> list[str]:
        return [e["data"]["state"] for e in self.of_type("actuator")]

    def wait_state(self, state: str, after: int = 0, timeout: float = 30.0) -> dict[str, Any]:
        """The first actuator event with `state` among events[after:]."""

        def found():
            return next(
                (
                    e
                    for e in list(self.events)[after:]
                    if e["type"] == "actuator" and e["data"]["state"] == state
                ),
                None,
            )

        return wait_for(found, timeout, f"actuator {state}")

    def close(self) -> None:
        if not self.closed.is_set():
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._ws.close()))
        self._thread.join(timeout=5)


@pytest.fixture
def watch():
    watchers: list[StreamWatcher] = []

    def open_watcher(url: str) -> StreamWatcher:
        watcher = StreamWatcher(url)
        watchers.append(watcher)
        return watcher

    yield open_watcher
    for watcher in watchers:
        watcher.close()


# -- real headless Chromium (Debian's), driven by Playwright ------------------
# (docs/architecture.md, "Testing")

#: A two-wheel base on mock pins, as a config's actuators list item: left
#: wheel forward GPIO17 / backward 27 / enable (PWM) 12, right 22 / 23 / 13.
GPIO_BASE = """  - name: base
    type: drive
    driver: gpio
    left:  {forward: 17, backward: 27, enable: 12}
    right: {forward: 22, backward: 23, enable: 13}"""

CHROMIUM = os.environ.get("ANSE_HW_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (bash .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def open_page(browser, **context_options):
    """A page in a fresh context (no cookies), collecting console errors in
    `page.errors`; close it with `page.context.close()`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


@pytest.fixture
def page(browser):
    page = open_page(browser)
    yield page
    page.context.close()


def text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto on a free port with its own config (tests/broker.py)."""
    from tests.broker import Mosquitto

    folder = tmp_path / "broker"
    folder.mkdir()
    mosquitto = Mosquitto(folder)
    yield mosquitto
    mosquitto.stop()
