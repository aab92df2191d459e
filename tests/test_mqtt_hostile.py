"""The MQTT bridge against what a broker, a publisher or an operator can throw
at it: retained and empty commands, messages of 100 MB, a broker that ignores
our packet-size limit or speaks only 3.1.1, SIGTERM in every connection state,
hosts the bridge cannot use, and a long outage.  Real Mosquitto, or a plain
socket speaking just enough MQTT (tests/broker.py) for what Mosquitto never
does; the daemon runs as a process on a pty TFmini and the mock pin factory.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import signal
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from anse_hw import config as configuration
from anse_hw.drivers.protocols import tfmini_frame
from anse_hw.mqtt.bridge import MqttBridge
from tests.broker import Mosquitto, ScriptedBroker, SilentServer, Subscriber
from tests.conftest import (
    engine_for,
    fast_sim_config,
    hardware_config,
    http_get,
    pin,
    run_cli,
    wait_for,
    write_config,
)
from tests.serialdev import PtyDevice
from tests.test_control import post

#: A message of 100 MB: what the broker's ACL lets any robot publish on
#: homeassistant/status, which every robot subscribes to.
HUGE = 100_000_000
#: Peak memory the daemon may reach while one arrives (it runs in ~35 MB; a
#: message held whole took it to ~450 MB).  A behaviour bound, not a speed one.
PEAK_MB = 150


@pytest.fixture
def brokers(tmp_path):
    made: list[Mosquitto] = []

    def make(persistent: bool = False) -> Mosquitto:
        folder = tmp_path / f"broker{len(made)}"
        folder.mkdir()
        made.append(Mosquitto(folder, persistent))
        return made[-1]

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def clients():
    made: list[Subscriber] = []

    def make(broker: Mosquitto, user: str, *topics: str) -> Subscriber:
        made.append(Subscriber(broker, user, *topics))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def scripted():
    made: list[ScriptedBroker] = []

    def make(levels: frozenset[int]) -> ScriptedBroker:
        made.append(ScriptedBroker(levels))
        return made[-1]

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def robot(tmp_path, start_daemon, watch):
    """A TFmini on a pty driving an L298N motor on the mock pin factory, with
    the operator token in a file the test knows; `mqtt` is the config's MQTT
    section.  Started again on the same config file, it is the same robot."""
    devices: list[PtyDevice] = []

    class Robot:
        def __init__(self, mqtt: str) -> None:
            self.device = PtyDevice(tmp_path / f"ttyLIDAR{len(devices)}")
            devices.append(self.device)
            self.pins = tmp_path / f"pins{len(devices)}.json"
            self.token = secrets.token_urlsafe(32)
            token_file = tmp_path / f"token{len(devices)}"
            token_file.write_text(self.token + "\n")
            token_file.chmod(0o600)
            text = hardware_config(0, self.device.path, self.pins, max_age=30).replace(
                "port: 0}", f"port: 0, control_token_file: {token_file}}}", 1
            )
            self.config = write_config(tmp_path, text + mqtt, f"robot{len(devices)}.yaml")
            self.start()

        def start(self) -> None:
            self.daemon = start_daemon(args=("--config", str(self.config)))
            self.stream = watch(self.daemon.url)

        def far(self) -> None:
            mark = len(self.stream.events)
            self.device.write(tfmini_frame(80))
            self.stream.wait_state("MOVING", after=mark)

        def near(self) -> None:
            mark = len(self.stream.events)
            self.device.write(tfmini_frame(5))
            self.stream.wait_state("STOPPED", after=mark)

        def latched(self) -> bool:
            return health(self.daemon.port)["estop_latched"]

        def figures(self) -> dict[str, float]:
            return mqtt_figures(self.daemon.port)

        def log_lines(self, text: str) -> list[str]:
            return [line for line in self.daemon.log().splitlines() if text in line]

    yield Robot
    for device in devices:
        device.close()


def health(port: int) -> dict:
    return json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])


def mqtt_figures(port: int) -> dict[str, float]:
    """The anse_mqtt_* samples of /metrics (a counter's _total suffix dropped)."""
    body = http_get(f"http://127.0.0.1:{port}/metrics")[1].decode()
    return {
        sample.name.removesuffix("_total"): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name.startswith("anse_mqtt_")
    }


def peak_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def connections(daemon) -> int:
    return daemon.log().count("MQTT: connected")


def caught_up(daemon, sender: Subscriber) -> None:
    """Until the bridge has handled all the broker sent it before now.  It
    handles messages in order, and logs Home Assistant coming online; a
    retained command comes at subscribe time, before it.  Published again
    until seen: the bridge may still be subscribing."""
    before = daemon.log().count("Home Assistant is online")

    def seen() -> bool:
        sender.publish("homeassistant/status", "online")
        return daemon.log().count("Home Assistant is online") > before

    wait_for(seen, timeout=30, what="the bridge to catch up", interval=0.5)


# -- commands act only on live messages ----------------------------------------


def test_a_retained_reset_releases_nothing_at_start_or_reconnect(robot, brokers, clients):
    broker = brokers(persistent=True)
    r = robot(broker.config("robot1"))
    wait_for(lambda: connections(r.daemon) == 1, what="the bridge")
    r.far()
    clients(broker, "operator").publish("anse/robot1/command/estop")  # live: obeyed
    wait_for(r.latched, what="the live estop")
    assert pin(r.pins, "GPIO17") == 0.0
    assert r.daemon.signal(signal.SIGTERM) == 0
    # Left on the broker while the robot is down: delivered at every subscribe.
    clients(broker, "operator").publish("anse/robot1/command/reset", retain=True)
    r.start()
    assert r.latched(), "it comes up latched"
    wait_for(lambda: connections(r.daemon) == 1, what="the bridge")
    caught_up(r.daemon, clients(broker, "robot2"))
    assert r.latched(), "the retained reset released nothing at connect"
    broker.stop()
    broker.start()  # persistent: the retained reset is still there
    wait_for(lambda: connections(r.daemon) == 2, timeout=40, what="the reconnect")
    operator = clients(broker, "operator")
    caught_up(r.daemon, operator)
    assert r.latched(), "nor at the reconnect"
    # Clearing it is an empty retained publish, which subscribers get live.
    operator.publish("anse/robot1/command/reset", "", retain=True)
    operator.publish("anse/robot1/command/reset", "", retain=True)
    caught_up(r.daemon, operator)
    assert r.latched(), "an empty reset is no reset"
    assert r.figures()["anse_mqtt_ignored_empty_commands"] == 2
    assert len(r.log_lines("ignored an empty reset")) == 1, "once per connection"
    for _ in range(3):
        r.device.write(tfmini_frame(80))
    assert pin(r.pins, "GPIO17") == 0.0
    operator.publish("anse/robot1/command/reset")  # live, with a payload: obeyed
    wait_for(lambda: not r.latched(), what="the live reset")
    r.far()
    assert pin(r.pins, "GPIO17") == 0.6
    assert "Traceback" not in r.daemon.log()


def test_a_retained_estop_does_not_undo_an_operator_reset_at_reconnect(robot, brokers, clients):
    broker = brokers(persistent=True)
    r = robot(broker.config("robot1"))
    wait_for(lambda: connections(r.daemon) == 1, what="the bridge")
    r.far()
    operator = clients(broker, "operator")
    operator.publish("anse/robot1/command/estop", retain=True)  # live to the robot: obeyed
    wait_for(r.latched, what="the estop")
    assert post(r.daemon.port, "/api/reset", r.token)[0] == 200
    r.far()
    broker.stop()
    broker.start()  # the retained estop is still there
    wait_for(lambda: connections(r.daemon) == 2, timeout=40, what="the reconnect")
    caught_up(r.daemon, clients(broker, "operator"))
    assert not r.latched(), "the operator's reset holds"
    assert pin(r.pins, "GPIO17") == 0.6, "and the motor runs on"


@pytest.mark.parametrize("levels", [frozenset({5}), frozenset({4})], ids=["mqtt5", "mqtt311"])
def test_retained_and_empty_commands_are_ignored_whatever_the_broker_sends(robot, scripted, levels):
    """A broker that sends retained commands despite the subscription's
    "do not send retained", or one speaking only 3.1.1 (which has no such
    option): the check on each message holds."""
    broker = scripted(levels)
    r = robot(broker.config("robot1"))
    wait_for(lambda: "anse/robot1/command/estop" in broker.subscribed, what="the subscription")
    r.far()
    for packet_id in (1, 2):
        broker.publish("anse/robot1/command/estop", b"PRESS", packet_id, retain=True)
    broker.publish("anse/robot1/command/estop", b"", 3)
    wait_for(lambda: broker.acked[-3:] == [1, 2, 3], what="the acknowledgements")
    wait_for(lambda: r.figures()["anse_mqtt_ignored_empty_commands"] == 1, what="the count")
    assert r.figures()["anse_mqtt_ignored_retained_commands"] == 2
    assert not r.latched() and pin(r.pins, "GPIO17") == 0.6
    assert len(r.log_lines("ignored a retained estop")) == 1, "once per connection"
    assert len(r.log_lines("ignored an empty estop")) == 1
    broker.publish("anse/robot1/command/estop", b"PRESS", 4)  # live: obeyed
    wait_for(r.latched, what="the live estop")
    assert pin(r.pins, "GPIO17") == 0.0
    said = r.log_lines("does not speak MQTT 5")
    assert len(said) == (1 if 5 not in levels else 0) and broker.refused == [5] * len(said)
    assert "Traceback" not in r.daemon.log()


# -- a bounded inbound packet size -----------------------------------------------


def test_a_100_mb_message_is_never_sent_to_the_robot_and_the_reflex_stops_on_time(
    robot, brokers, clients
):
    broker = brokers()
    r = robot(broker.config("robot1"))
    wait_for(lambda: connections(r.daemon) == 1, what="the bridge")
    caught_up(r.daemon, clients(broker, "robot2"))
    r.far()
    attacker = clients(broker, "robot2")  # the README's ACL lets every robot write there
    sending = threading.Thread(
        target=attacker.publish, args=("homeassistant/status", b"\0" * HUGE), daemon=True
    )
    sending.start()
    r.near()  # while it travels
    assert pin(r.pins, "GPIO17") == 0.0
    sending.join(120)
    wait_for(
        lambda: "Dropping too large outgoing PUBLISH for anse-hw-robot1" in broker.log.read_text(),
        timeout=60,
        what="the broker to drop it: MQTT 5's Maximum Packet Size",
    )
    r.far()
    r.near()
    assert peak_mb(r.daemon.proc.pid) < PEAK_MB
    assert r.figures()["anse_mqtt_connected"] == 1
    assert "Traceback" not in r.daemon.log()


@pytest.mark.parametrize(
    "levels", [frozenset({5}), frozenset({4})], ids=["ignores-the-limit", "mqtt311-only"]
)
def test_a_broker_that_sends_100_mb_anyway_cannot_blow_up_memory(robot, scripted, levels):
    """The client-side cap: a broker that ignores Maximum Packet Size, or
    speaks only 3.1.1 and never heard of it.  The message is dropped and
    counted, acknowledged (so the broker's in-flight window does not fill),
    and the connection, the commands and the reflexes carry on."""
    broker = scripted(levels)
    r = robot(broker.config("robot1"))
    wait_for(lambda: "homeassistant/status" in broker.subscribed, what="the subscriptions")
    r.far()
    sending = threading.Thread(
        target=broker.publish, args=("homeassistant/status", b"\0" * HUGE, 7), daemon=True
    )
    sending.start()
    r.near()  # while it travels
    assert pin(r.pins, "GPIO17") == 0.0
    sending.join(120)
    wait_for(lambda: 7 in broker.acked, timeout=60, what="the oversized message's PUBACK")
    assert r.figures()["anse_mqtt_dropped_oversized_messages"] == 1
    assert len(r.log_lines("dropped a message over")) == 1
    broker.publish("anse/robot1/command/estop", b"PRESS", 8)  # the link still works
    wait_for(r.latched, what="the estop after it")
    assert peak_mb(r.daemon.proc.pid) < PEAK_MB
    assert connections(r.daemon) == 1, "no disconnect"
    assert "Traceback" not in r.daemon.log()


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


# -- an outage is a few lines and one summary ------------------------------------


def test_an_outage_logs_drops_at_1_10_100_and_one_summary_when_it_ends(brokers, start_daemon):
    broker = brokers()
    section = broker.config("robot1").replace("robot_id: robot1", "robot_id: robot1, queue: 10")
    daemon = start_daemon(fast_sim_config(0, interval=0.01) + section)
    wait_for(lambda: connections(daemon) == 1, what="the bridge")
    broker.stop()
    wait_for(lambda: "MQTT: 100 events dropped" in daemon.log(), timeout=60, what="100 drops")
    broker.start()
    wait_for(
        lambda: "the broker is taking events again" in daemon.log(),
        timeout=60,
        what="the summary",
    )
    log = daemon.log()
    counts = [int(n) for n in re.findall(r"MQTT: (\d+) events dropped while", log)]
    assert counts == [10**i for i in range(len(counts))] and len(counts) >= 3, counts
    summary = re.findall(r"taking events again; (\d+) were dropped", log)
    assert len(summary) == 1 and int(summary[0]) >= counts[-1]
    assert log.rindex("events dropped while") < log.index("taking events again")
    assert "Traceback" not in log
