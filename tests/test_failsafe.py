"""The safety contract, docs/safety.md S1–S8: every way to fail ends with the motor stopped.

S9 (the HC-SR04 never blocks, adds no lag) lives in test_gpio_drivers.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw import config as configuration
from anse_hw.app.devices import build_actuators, build_sensors
from anse_hw.drivers.pins import read_pin_states
from anse_hw.drivers.protocols import tfmini_frame
from anse_hw.engine import Engine
from anse_hw.readings import Sample
from tests.conftest import (
    ROOT,
    ExactEchoFactory,
    ExactEchoPin,
    daemon_env,
    hardware_config,
    http_get,
    pin,
    stalled_client,
    wait_for,
)
from tests.serialdev import PtyDevice


@pytest.fixture
def rig(tmp_path, start_daemon, watch):
    """A daemon with a TFmini on a pty (behind a stable symlink) and a mock-pin motor."""

    class Rig:
        def __init__(
            self, max_age: float = 0.3, args: tuple[str, ...] = (), env: dict | None = None
        ) -> None:
            self.link = tmp_path / "ttyLIDAR"
            self.device = PtyDevice(self.link)
            self.pins = tmp_path / "pins.json"
            self.config = hardware_config(0, self.device.path, self.pins, max_age)
            self.daemon = start_daemon(self.config, args=args, env=env)
            self.port = self.daemon.port
            self.stream = watch(self.daemon.url)

        def moving(self) -> None:
            """Stream far readings until the motor runs."""
            mark = len(self.stream.events)
            self.device.write(tfmini_frame(80))
            self.stream.wait_state("MOVING", after=mark)
            assert pin(self.pins, "GPIO17") == 0.6

    made: list[Rig] = []

    def make(**kwargs) -> Rig:
        made.append(Rig(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.device.close()


# -- S1 -----------------------------------------------------------------------


def test_s1_motor_starts_stopped_until_a_fresh_safe_reading(rig):
    r = rig(max_age=5)
    snapshot = wait_for(lambda: r.stream.events, what="the snapshot")[0]
    assert snapshot["data"]["actuator_state"] == "STOPPED"
    assert snapshot["data"]["safe"] is False, "no reading yet: not safe"
    assert pin(r.pins, "GPIO17") == 0.0
    r.device.write(tfmini_frame(12))  # between the thresholds: not enough to move
    wait_for(lambda: r.stream.of_type("sensor"), what="the first reading")
    assert r.stream.actuator_states() == [] and pin(r.pins, "GPIO17") == 0.0
    r.moving()


# -- S2 -----------------------------------------------------------------------


def test_s2_silent_serial_sensor_stops_the_motor_and_resumes_only_when_clear(rig):
    r = rig(max_age=0.3)
    r.moving()
    feeding = True

    def feed():  # 50 Hz of far readings, then silence
        while feeding:
            r.device.write(tfmini_frame(80))
            time.sleep(0.02)

    import threading

    feeder = threading.Thread(target=feed)
    fed = len(r.stream.of_type("sensor"))
    feeder.start()
    wait_for(lambda: len(r.stream.of_type("sensor")) >= fed + 10, what="ten fed readings")
    mark = len(r.stream.events)
    feeding = False
    feeder.join()
    stop = r.stream.wait_state("STOPPED", after=mark)
    assert pin(r.pins, "GPIO17") == 0.0
    timeouts = [
        e for e in r.stream.of_type("reflex") if e["data"]["reflex_name"] == "sensor_timeout"
    ]
    assert timeouts and "300ms" in timeouts[-1]["data"]["condition"]
    after_stop = [e for e in r.stream.events if e["seq"] > stop["seq"]]
    world = after_stop[0]["data"]
    assert world["safe"] is False and world["sensors"]["lidar"]["fresh"] is False
    # Stopped for silence, not before max_age had passed (the daemon's own
    # clock); how soon after it is measured in benchmarks/failsafe.py.
    assert world["sensors"]["lidar"]["age_ms"] >= 300

    r.device.write(tfmini_frame(12))  # fresh, but inside the hysteresis band
    wait_for(lambda: r.stream.of_type("sensor")[-1]["data"]["value"] == 12.0, what="reading")
    assert r.stream.actuator_states()[-1] == "STOPPED"
    mark = len(r.stream.events)
    r.device.write(tfmini_frame(40))
    r.stream.wait_state("MOVING", after=mark)


def engine_on_mock_pins(text: str, factory: MockFactory, published: list) -> Engine:
    cfg = configuration.parse(text)
    sensors = build_sensors(cfg, factory)
    factory.pin_class = MockPWMPin  # sensor pins first, then PWM pins for the motor
    actuators = build_actuators(cfg, factory)
    crashes: list = []
    engine = Engine(cfg, sensors, actuators, published.extend, crashes.append)
    engine.crashes = crashes
    return engine


HCSR04_CONFIG = """
sensors:
  - {name: front, driver: hcsr04, trigger: 23, echo: 24, interval: 0.03, max_age: 0.3}
actuators:
  - {name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.5}
reflexes:
  - {name: proximity_safeguard, sensor: front, below: 10, actuator: movement, command: stop}
  - {name: clear_to_move, sensor: front, above: 15, actuator: movement, command: move}
"""


def test_s2_hcsr04_echo_lost_stops_the_motor():
    factory = ExactEchoFactory()
    echo = factory.pin(24)
    trigger = factory.pin(23, pin_class=ExactEchoPin, echo_pin=echo, echo_time=0.003)
    published: list = []
    engine = engine_on_mock_pins(HCSR04_CONFIG, factory, published)
    engine.start()
    try:
        wait_for(lambda: factory.pin(17).state == 0.5, what="the motor to move")
        trigger.echo_pin = factory.pin(5)  # the echo wire comes loose
        wait_for(lambda: factory.pin(17).state == 0, what="the motor to stop")
        reflexes = [e["data"]["reflex_name"] for e in published if e["type"] == "reflex"]
        assert reflexes[-1] == "sensor_timeout"
        stale = [e for e in published if e["type"] == "worldmodel"][-1]["data"]
        assert stale["safe"] is False and stale["distance_cm"] is None
        assert not engine.crashes
    finally:
        engine.close()


def all_threads_stopped(pid: int) -> bool:
    """SIGSTOP is delivered asynchronously: a running thread may read on for a moment."""
    tasks = Path(f"/proc/{pid}/task")
    return all(
        (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T" for task in tasks.iterdir()
    )


def test_s2_buffered_far_readings_do_not_restart_the_motor_after_a_freeze(rig):
    """SIGSTOP/SIGCONT: what sat in the serial buffer while the process was
    frozen is older than max_age; it must not move the motor."""
    r = rig(max_age=0.3)
    r.moving()
    mark = len(r.stream.events)
    r.device.write(tfmini_frame(5))
    r.stream.wait_state("STOPPED", after=mark)
    pid = r.daemon.proc.pid
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: all_threads_stopped(pid), what="every daemon thread to be stopped")
    try:
        # 1.5 s of a clear road at 100 Hz, then the obstacle is back: the
        # far frames would restart the motor if they were taken as news.
        for _ in range(150):
            r.device.write(tfmini_frame(80))
        for _ in range(10):
            r.device.write(tfmini_frame(5))
        time.sleep(1.5)  # the freeze itself is what is being tested
    finally:
        os.kill(r.daemon.proc.pid, signal.SIGCONT)
    resumed = len(r.stream.events)

    def near_readings_after_resume() -> bool:
        r.device.write(tfmini_frame(5))
        fresh = [
            e for e in r.stream.of_type("sensor") if e["seq"] > r.stream.events[resumed - 1]["seq"]
        ]
        return len(fresh) >= 20

    wait_for(near_readings_after_resume, 30, "the daemon to resume reading")
    after = r.stream.events[resumed:]
    assert "MOVING" not in [e["data"]["state"] for e in after if e["type"] == "actuator"]
    assert all(e["data"]["value"] == 5 for e in after if e["type"] == "sensor")
    assert pin(r.pins, "GPIO17") == 0.0
    assert "bytes buffered during a" in r.daemon.log()


def test_s2_an_old_reading_can_stop_but_never_move():
    """A reading that waited longer than max_age for the engine (a stalled
    control path) is judged by when it was taken."""
    published: list = []
    engine = engine_on_mock_pins(TWO_REFLEXES, MockFactory(), published)
    old = time.monotonic() - 60.0  # max_age is 30 s
    engine.on_sample("s", Sample(80.0, taken=old))
    assert engine.actuators["m"].state == "STOPPED"
    assert not engine.world.sensors["s"].fresh()
    engine.on_sample("s", Sample(80.0))
    assert engine.actuators["m"].state == "MOVING"
    engine.on_sample("s", Sample(5.0, taken=old))
    assert engine.actuators["m"].state == "STOPPED"
    engine.on_sample("s", Sample(80.0, taken=old))
    assert engine.actuators["m"].state == "STOPPED"


# -- S3 -----------------------------------------------------------------------


TWO_REFLEXES = """
sensors: [{name: s, driver: sim, interval: 10, max_age: 30}]
actuators: [{name: m, driver: sim}]
reflexes:
  - {name: stop, sensor: s, below: 10, actuator: m, command: stop}
  - {name: go, sensor: s, above: 15, actuator: m, command: move}
"""


def test_s3_invalid_readings_never_reach_the_world_model():
    published: list = []
    engine = engine_on_mock_pins(TWO_REFLEXES, MockFactory(), published)
    implausible = (Sample(math.nan), Sample(math.inf), Sample(-3.0), Sample(1e255))
    for bad in (*implausible, Sample.none("no echo")):
        engine.on_sample("s", bad)
    assert published == []
    assert engine.world.sensors["s"].value is None
    assert engine.world.sensors["s"].invalid == 5
    assert not engine.world.sensors["s"].fresh()
    engine.on_sample("s", Sample(40.0))
    assert [e["type"] for e in published][:2] == ["sensor", "worldmodel"]


def test_s3_weak_signal_frames_never_count_as_fresh(rig):
    r = rig(max_age=0.3)
    for _ in range(20):
        r.device.write(tfmini_frame(80, strength=10))
    wait_for(
        lambda: any(
            e["data"]["reflex_name"] == "sensor_timeout" for e in r.stream.of_type("reflex")
        ),
        what="the sensor to go stale",
    )
    assert r.stream.of_type("sensor") == [] and pin(r.pins, "GPIO17") == 0.0
    health = http_get(f"http://127.0.0.1:{r.port}/healthz")
    assert health[0] == 503


# -- S4 -----------------------------------------------------------------------


class IdleClients:
    """`count` WebSocket clients that read everything and say nothing."""

    def __init__(self, url: str, count: int) -> None:
        import threading

        from websockets.asyncio.client import connect

        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.received = 0

        async def client() -> None:
            async with connect(url, close_timeout=1) as ws:
                self.connected += 1
                if self.connected == count:
                    self.ready.set()
                async for _ in ws:
                    self.received += 1

        async def main() -> None:
            self.tasks = [asyncio.create_task(client()) for _ in range(count)]
            await asyncio.gather(*self.tasks, return_exceptions=True)

        self.connected = 0
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(main(),), daemon=True
        )
        self.thread.start()
        assert self.ready.wait(30), f"only {self.connected} of {count} clients connected"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(lambda: [t.cancel() for t in self.tasks])
        self.thread.join(timeout=30)
        if not self.thread.is_alive():  # a loop still closing 100 sockets is left to exit
            self.loop.close()


def test_s4_stalled_and_idle_clients_do_not_delay_a_stop(rig):
    r = rig(max_age=2)
    r.moving()
    stalled = stalled_client(r.port)
    idle = IdleClients(r.daemon.url, 100)
    try:
        # Fill the stalled client's buffers: far readings, fast, until the daemon
        # reports it behind (its telemetry is being conflated).
        def behind() -> dict | None:
            r.device.write(tfmini_frame(80) * 20)
            health = json.loads(http_get(f"http://127.0.0.1:{r.port}/healthz")[1])
            return health if health["clients_behind"] else None

        assert wait_for(behind, 60, "the stalled client to fall behind")["clients"] == 102
        r.device.write(tfmini_frame(5))
        wait_for(lambda: pin(r.pins, "GPIO17") == 0.0, what="the stop")
        # The stop did not wait for the stalled client to catch up, nor to be
        # dropped; how fast it is with such clients is in BENCHMARKS.md.
        health = json.loads(http_get(f"http://127.0.0.1:{r.port}/healthz")[1])
        assert health["clients"] == 102 and health["clients_behind"] >= 1, health
        r.stream.wait_state("STOPPED")
        assert idle.received > 0
    finally:
        idle.close()
        stalled.close()


# -- S5 -----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_s5_signals_stop_the_motor_release_pins_and_exit_0(rig, sig):
    r = rig(max_age=5)
    r.moving()
    assert r.daemon.signal(sig) == 0
    state = read_pin_states(r.pins)
    assert state["GPIO17"]["state"] == 0.0 and state["GPIO17"]["function"] == "input"
    assert r.stream.actuator_states()[-1] == "STOPPED"


def test_s5_driver_exception_stops_the_motor_and_exits_1(tmp_path, start_daemon):
    pins = tmp_path / "pins.json"
    daemon = start_daemon(
        f"""
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: s, driver: sim, interval: 0.05, profile: constant, value: 80, fail_after: 10}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, speed: 0.6}}
reflexes:
  - {{name: stop, sensor: s, below: 10, actuator: movement, command: stop}}
  - {{name: go, sensor: s, above: 15, actuator: movement, command: move}}
""",
        wait=False,  # it may be gone before a test could see it listen
    )
    assert daemon.proc.wait(timeout=30) == 1
    log = daemon.log()
    assert "fatal error: RuntimeError: simulated driver fault after 10 readings" in log
    assert "MOVING" in log or pin(pins, "GPIO17") == 0.0
    assert read_pin_states(pins)["GPIO17"] == {"function": "input", "state": 0.0}


# -- S6 -----------------------------------------------------------------------


DAMAGE = {
    "intact": lambda text: text,
    "reflex-typo": lambda text: text.replace("sensor: lidar, below", "sensor: lidr, below"),
    "yaml-syntax-error": lambda text: text.replace("command: move}", "command: move"),
    "actuator-typo": lambda text: text.replace("speed: 0.6}", "speed: 0.6, sped: 1}"),
}


@pytest.mark.parametrize("record", [True, False], ids=["with-record", "without-record"])
@pytest.mark.parametrize("damage", [*DAMAGE, "deleted"])
def test_s6_safe_stop_after_sigkill_forces_the_pins_to_stop(rig, tmp_path, damage, record):
    """After a SIGKILL the config may have been broken or removed since the
    daemon started; --safe-stop still stops what it can identify, from the
    record of the last start or from what is still valid in the file."""
    # Under systemd (its ExecStopPost runs --safe-stop), so no guardian acts first.
    r = rig(max_age=5, env={"NOTIFY_SOCKET": NotifySocket(tmp_path / "notify.sock").path})
    r.moving()
    r.daemon.proc.kill()
    r.daemon.proc.wait()
    # Like a Raspberry Pi kernel: the dead process's outputs stay driven.
    assert pin(r.pins, "GPIO17") == 0.6
    config_file = tmp_path / "robot0.yaml"
    if damage == "deleted":
        config_file.unlink()
    else:
        config_file.write_text(DAMAGE[damage](config_file.read_text()))
    if not record:
        (r.daemon.state / "safe-stop.json").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "anse_hw", "--config", str(config_file), "--safe-stop"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=daemon_env(tmp_path),
    )
    assert "Traceback" not in result.stderr
    can_stop = record or damage not in ("deleted", "actuator-typo")
    if can_stop:
        assert result.returncode == 0, result.stderr
        assert "movement: STOPPED" in result.stderr
        assert pin(r.pins, "GPIO17") == 0.0 and pin(r.pins, "GPIO18") == 0.0
    else:  # truly nothing to go on: say so, and fail so systemd shows it
        assert result.returncode == 1, result.stderr
        assert "nothing could be stopped" in result.stderr
        assert pin(r.pins, "GPIO17") == 0.6


# -- S7 -----------------------------------------------------------------------


def test_s7_unplugged_port_stops_the_motor_and_recovers(rig):
    r = rig(max_age=5)
    r.moving()
    mark = len(r.stream.events)
    r.device.unplug()
    r.stream.wait_state("STOPPED", after=mark)
    assert pin(r.pins, "GPIO17") == 0.0
    lost = [e["data"] for e in r.stream.of_type("reflex") if e["data"]["triggered"]]
    assert lost[-1]["reflex_name"] == "sensor_fault" and "lost" in lost[-1]["condition"]
    # That the reopen backs off instead of spinning is test_serial_driver's;
    # the daemon's CPU meanwhile is measured in benchmarks/failsafe.py.
    r.device = PtyDevice(r.link)  # plugged back in
    wait_for(
        lambda: any(
            not e["data"]["triggered"] and "reopened" in e["data"]["condition"]
            for e in r.stream.of_type("reflex")
        ),
        what="the port to reopen",
    )
    r.moving()


# -- S8 -----------------------------------------------------------------------


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def receive(self, until, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while not until(self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"sd_notify: got {self.messages}")
            self.sock.settimeout(remaining)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def pending(self) -> list[str]:
        """Everything queued in the socket now, without waiting for more."""
        queued = []
        self.sock.setblocking(False)
        try:
            while True:
                queued.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        self.sock.setblocking(True)
        return queued

    def drain(self) -> None:
        """Forget everything sent so far, received or still queued in the socket."""
        self.pending()
        self.messages.clear()


def test_s8_sd_notify_ready_watchdog_stopping_in_order(tmp_path, rig):
    notify = NotifySocket(tmp_path / "notify.sock")
    r = rig(max_age=5, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    messages = notify.receive(lambda m: m.count("WATCHDOG=1") >= 3)
    assert messages[0].startswith("READY=1")
    assert set(messages[1:]) == {"WATCHDOG=1"}
    r.daemon.signal(signal.SIGTERM)
    messages = notify.receive(lambda m: "STOPPING=1" in m)
    assert messages[-1] == "STOPPING=1"


def test_s8_watchdog_pings_stop_when_the_control_path_stalls(tmp_path, start_daemon):
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = start_daemon(
        """
server: {host: 127.0.0.1, port: 0}
sensors:
  - {name: s, driver: sim, interval: 0.05, profile: script, values: [80, 80, 5, 80]}
actuators:
  - {name: movement, driver: sim, stall_after: 2}
reflexes:
  - {name: stop, sensor: s, below: 10, actuator: movement, command: stop}
  - {name: go, sensor: s, above: 15, actuator: movement, command: move}
""",
        env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"},
    )
    # Commands: stop at start-up, move at 80 cm; the stop at 5 cm hangs forever.
    notify.receive(lambda m: "READY=1" in "".join(m))
    withheld = "withholding the systemd watchdog ping"
    wait_for(lambda: withheld in daemon.log(), what="the stall to be noticed")
    notify.drain()
    # Each watchdog period either pings or says it withheld the ping: three
    # more periods said so, and no ping came in between.
    stalls = daemon.log().count(withheld)
    wait_for(lambda: daemon.log().count(withheld) >= stalls + 3, what="three more periods")
    assert "WATCHDOG=1" not in notify.pending()
    # The shutdown hangs on the wedged motor too; a second SIGTERM forces the exit.
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping motors and shutting down" in daemon.log(), what="shutdown")
    assert daemon.signal(signal.SIGTERM) == 1
    assert "received again" in daemon.log()
