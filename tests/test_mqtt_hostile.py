"""The MQTT bridge against what a broker, a publisher or an operator can throw
at it: SIGTERM in every connection state, hosts the bridge cannot use.  Real
Mosquitto, or a plain socket (tests/broker.py) for what Mosquitto never does;
the daemon runs as a process on a pty TFmini and the mock pin factory.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest

from anse_hw import config as configuration
from anse_hw.drivers.protocols import tfmini_frame
from anse_hw.mqtt import MqttBridge
from tests.broker import Mosquitto, SilentServer
from tests.conftest import (
    engine_for,
    fast_sim_config,
    hardware_config,
    pin,
    run_cli,
    wait_for,
    write_config,
)
from tests.serialdev import PtyDevice


@pytest.fixture
def brokers(tmp_path):
    made: list[Mosquitto] = []

    def make() -> Mosquitto:
        folder = tmp_path / f"broker{len(made)}"
        folder.mkdir()
        made.append(Mosquitto(folder))
        return made[-1]

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def robot(tmp_path, start_daemon, watch):
    """A TFmini on a pty driving an L298N motor on the mock pin factory;
    `mqtt` is the config's MQTT section."""
    devices: list[PtyDevice] = []

    class Robot:
        def __init__(self, mqtt: str) -> None:
            self.device = PtyDevice(tmp_path / f"ttyLIDAR{len(devices)}")
            devices.append(self.device)
            self.pins = tmp_path / f"pins{len(devices)}.json"
            text = hardware_config(0, self.device.path, self.pins, max_age=30)
            self.config = write_config(tmp_path, text + mqtt, f"robot{len(devices)}.yaml")
            self.start()

        def start(self) -> None:
            self.daemon = start_daemon(args=("--config", str(self.config)))
            self.stream = watch(self.daemon.url)

        def far(self) -> None:
            mark = len(self.stream.events)
            self.device.write(tfmini_frame(80))
            self.stream.wait_state("MOVING", after=mark)

    yield Robot
    for device in devices:
        device.close()


def connections(daemon) -> int:
    return daemon.log().count("MQTT: connected")


# -- shutdown within a bound, whatever the connection is doing ------------------


@pytest.mark.parametrize(
    "state", ["broker-down", "broker-silent", "broker-coming-back", "broker-serving"]
)
def test_sigterm_in_any_connection_state_ends_the_daemon_with_the_motor_stopped(
    state, robot, brokers, request
):
    """Five rounds per state, SIGTERM at a random moment: retrying a broker
    that is down; connecting to a host that accepts TCP and never answers
    MQTT; reconnecting to a broker that just came back; connected."""
    rng = random.Random(state)
    if state == "broker-silent":
        silent = SilentServer()
        request.addfinalizer(silent.close)
        section = f"mqtt: {{host: 127.0.0.1, port: {silent.port}, robot_id: robot1}}\n"
    else:
        broker = brokers()
        section = broker.config("robot1")
    for _ in range(5):
        if state != "broker-silent" and broker.proc.poll() is not None:
            broker.start()
        r = robot(section)
        r.far()
        if state == "broker-silent":
            wait_for(lambda: len(silent.accepted) > 0, what="a connect attempt")
            delay = rng.uniform(0, 6)  # an attempt gives up after 5 s
        else:
            wait_for(lambda r=r: connections(r.daemon) == 1, what="the bridge")
            delay = rng.uniform(0, 1)
        if state in ("broker-down", "broker-coming-back"):
            broker.stop()
            delay = rng.uniform(0, 2)
        if state == "broker-coming-back":
            wait_for(lambda r=r: "unreachable" in r.daemon.log(), what="the outage")
            broker.start()
            delay = rng.uniform(0, 1.5)  # the first retry comes after 1 s
        time.sleep(delay)  # a random moment to land in, not a synchronisation
        r.daemon.proc.send_signal(signal.SIGTERM)
        assert r.daemon.proc.wait(timeout=60) == 0, r.daemon.log()
        assert pin(r.pins, "GPIO17") == 0.0
        assert "Traceback" not in r.daemon.log()


def test_close_ends_the_bridge_in_every_state_of_a_connection(brokers):
    """In process, 150 times: close() at a random moment of connecting,
    subscribing or serving a busy event stream.  On Python 3.11 a single
    cancellation can be swallowed by asyncio.wait_for inside aiomqtt; the
    bridge used to run on in its session, and the daemon waited forever."""
    broker = brokers()
    text = fast_sim_config(0) + broker.config("robot1")
    engine, _ = engine_for(text)
    config = configuration.parse(text)

    async def command(action: str, source: str) -> None:
        engine.operator(action, source)

    async def rounds() -> list[int]:
        rng = random.Random(150)
        unfinished = []
        for round_ in range(150):
            bridge = MqttBridge(config, engine.snapshot_event, command)
            task = asyncio.create_task(bridge.run())
            feeding = asyncio.create_task(feed(bridge))
            await asyncio.sleep(rng.uniform(0, 0.08))
            await bridge.close(task)
            feeding.cancel()
            if not task.done():
                unfinished.append(round_)
                task.cancel()
        return unfinished

    async def feed(bridge: MqttBridge) -> None:
        while True:
            bridge.offer([engine.snapshot_event()])
            await asyncio.sleep(0.002)

    assert asyncio.run(rounds()) == [], "rounds whose bridge was still running after close()"


# -- the bridge task never dies silently --------------------------------------


@pytest.mark.parametrize("host", ["''", "a..b", "x" * 300])
def test_a_host_the_bridge_cannot_use_is_one_line_and_the_robot_runs_on(
    host, tmp_path, start_daemon, watch
):
    """Refused by --check (then one line, exit 2), or, if a check lets it
    through, one line from the bridge while the reflexes run on, and a clean
    exit on SIGTERM."""
    text = fast_sim_config(0) + f"mqtt: {{host: {host}, robot_id: robot1}}\n"
    checked = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert "Traceback" not in checked.stderr
    if checked.returncode != 0:
        assert checked.returncode == 2 and "mqtt.host" in checked.stderr, checked.stderr
        return
    daemon = start_daemon(text)
    wait_for(lambda: "MQTT: " in daemon.log(), what="the bridge to say why")
    stream = watch(daemon.url)
    stream.wait_state("STOPPED")
    stream.wait_state("MOVING", after=len(stream.events))
    assert daemon.signal(signal.SIGTERM) == 0
    log = daemon.log()
    assert len([line for line in log.splitlines() if "MQTT: " in line]) == 1, log
    assert "Traceback" not in log
