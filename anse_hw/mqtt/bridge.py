"""The MQTT bridge: many robots, one broker, Home Assistant on top
(README.md, "Many robots: MQTT and Home Assistant").

A sink like the WebSocket hub: the daemon hands it every published batch
(`offer`, on the event loop, O(1), never blocking), and it forwards them from
its own bounded queue.  With aiomqtt (an asyncio client over paho-mqtt) on
the same loop, a broker that is down, slow or refusing costs the reflex path
nothing: the engine never waits for this module, and when the queue is full
the oldest telemetry is dropped and counted (reflex and actuator events are
the last to go).

Topics, under <topic_prefix>/<robot_id>/:
  status               online / offline (retained; offline is the last will)
  events               every wire event, the WebSocket's JSON
  sensor/<name>        latest reading, retained (at most once a second per sensor)
  actuator/<name>      latest state, retained
  estop                ON while the E-stop is latched, else OFF (retained)
  command/estop|reset  the E-stop latch of the control API (the broker's
                       credentials and ACLs decide who may publish there);
                       only a live, non-empty message acts: a retained one is
                       redelivered at every connect, and must never release
                       or re-latch the E-stop on its own
Home Assistant: one device at <discovery_prefix>/device/<robot_id>/config,
re-sent when <discovery_prefix>/status says online.  At connect the bridge
reads back the config the broker retained from the last run: parts that are
gone are removed from Home Assistant and their retained states cleared.

What the broker sends us is bounded (inbound.py); Home Assistant's discovery
payload is built in discovery.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from anse_hw import events
from anse_hw.eventqueue import EventQueue
from anse_hw.kinds import OFF, ON
from anse_hw.model import Config, MqttConfig
from anse_hw.mqtt.discovery import RETAIN_PERIOD, discovery, estop_topic, leftovers
from anse_hw.mqtt.inbound import OVERSIZED, PACKET_ROOM, limit_inbound
from anse_hw.operator import ESTOP_REFLEX

log = logging.getLogger(__name__)

RECONNECT_MIN, RECONNECT_MAX = 1.0, 30.0
#: How long the bridge waits at connect for the broker to hand back the last
#: run's retained discovery config; none by then means there is none.
RETAINED_WITHIN = 1.0
#: Room for reading back our own retained discovery config (a few hundred
#: bytes per part: a hundredfold margin for a robot with a dozen parts).
DISCOVERY_ROOM = 65536
#: Broker answers that mean "these credentials will not work" (MQTT 3.1.1 and 5
#: reason codes): said once, not per retry.
REFUSED_CODES = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised (user name or password)",
}
#: The CONNACK of a broker that does not speak MQTT 5 (paho maps 3.1.1's
#: "unacceptable protocol version" to it too).
UNSUPPORTED_PROTOCOL = 132
#: How long close() gives the "offline" status, and then the whole bridge.
OFFLINE_WITHIN, CLOSE_WITHIN = 1.0, 3.0
#: The kinds of message the bridge counts and does not act on (/metrics).
IGNORED = ("ignored_retained_commands", "ignored_empty_commands", "dropped_oversized_messages")


async def _end(tasks: Iterable[asyncio.Task], within: float, grace: float = 0.0) -> bool:
    """Give `tasks` `grace` seconds to end by themselves, then cancel them
    until they have ended or `within` seconds have passed; True if they did.

    Cancelled once, a task can run on: on Python 3.11, asyncio.wait_for (in
    every aiomqtt call) swallows a cancellation that arrives together with the
    result it awaits, and the task carries on in its session.  That is how a
    SIGTERM landing during a reconnect used to hang the daemon: the shutdown
    waited for a task that no longer knew it was stopping.
    """
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    if pending and grace:
        _, pending = await asyncio.wait(pending, timeout=grace)
    while pending and (left := deadline - loop.time()) > 0:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(left, 0.1))
    return not pending


async def _first_to_end(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run `jobs` until one of them ends, then end the others; raise the
    error the first one ended with, if any."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _end(tasks, CLOSE_WITHIN)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error


class MqttBridge:
    def __init__(
        self,
        config: Config,
        snapshot: Callable[[], dict[str, Any]],
        command: Callable[[str, str], Any],
    ) -> None:
        self.mqtt: MqttConfig = config.mqtt
        self.config = config
        self.snapshot = snapshot
        self.command = command  # async (action, source)
        m = self.mqtt
        self.base = f"{m.topic_prefix}/{m.robot_id}"
        self._commands = {f"{self.base}/command/{a}": a for a in ("estop", "reset")}
        self._ha_status = f"{m.discovery_prefix}/status" if m.discovery_prefix else None
        self._ha_config = (
            f"{m.discovery_prefix}/device/{m.robot_id}/config" if m.discovery_prefix else None
        )
        topics = [*self._commands, *([self._ha_status] if self._ha_status else [])]
        #: The largest packet we take from the broker.
        self.max_packet = (
            PACKET_ROOM
            + max(len(t.encode()) for t in topics)
            + (DISCOVERY_ROOM if self._ha_config else 0)
        )
        #: Home Assistant's removal entries for parts an earlier run announced
        #: and this one does not: kept in every announce of this run.
        self._gone: dict[str, dict[str, str]] = {}
        self._protocol = aiomqtt.ProtocolVersion.V5
        self._queue: EventQueue[dict[str, Any]] = EventQueue(self.mqtt.queue)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._latest_sensor: dict[str, dict[str, Any]] = {}
        self._sensor_sent: dict[str, float] = {}
        self.connected = False
        self.dropped = 0
        #: Messages from the broker we did not act on, by kind (see state()).
        self.ignored: Counter[str] = Counter()
        self._noted: set[str] = set()  # kinds logged on this connection
        self._outage_drops = 0  # events dropped since the broker last took them all
        self._next_report = 1
        self._delivered = True  # the last publish went out (was not dropped)
        self._last_problem = ""
        self._stopping = False
        self._live: aiomqtt.Client | None = None

    # -- fed by the daemon (event loop thread) ----------------------------------

    def offer(self, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            if self._queue.put(event, events.is_telemetry(event)):
                self._count_drop()
        self._wake.set()

    def _count_drop(self) -> None:
        """One event lost.  Said at 1, 10, 100, 1000... drops of one outage, so a
        long outage costs a handful of lines, not one every few seconds."""
        self.dropped += 1
        self._outage_drops += 1
        self._delivered = False
        if self._outage_drops == self._next_report:
            self._next_report *= 10
            log.warning(
                "MQTT: %d events dropped while the broker is not taking them (queue %d)",
                self._outage_drops,
                self.mqtt.queue,
            )

    def _caught_up(self) -> None:
        """The queue is empty and the last publish went out: an outage is over."""
        if self._outage_drops and self._delivered:
            log.info(
                "MQTT: the broker is taking events again; %d were dropped while it was not",
                self._outage_drops,
            )
            self._outage_drops, self._next_report = 0, 1

    def state(self) -> dict[str, float]:
        """For /metrics: a name ending in _total is a count since the start."""
        return {
            "connected": int(self.connected),
            "queue_depth": len(self._queue),
            "dropped_events_total": self.dropped,
            **{f"{kind}_total": self.ignored[kind] for kind in IGNORED},
        }

    # -- the connection ---------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        m = self.mqtt
        mqtt5 = self._protocol == aiomqtt.ProtocolVersion.V5
        properties = None
        if mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.MaximumPacketSize = self.max_packet
        client = aiomqtt.Client(
            m.host,
            m.port,
            username=m.username,
            password=m.password,
            identifier=f"anse-hw-{m.robot_id}",
            protocol=self._protocol,
            properties=properties,
            will=aiomqtt.Will(f"{self.base}/status", "offline", qos=1, retain=True),
            keepalive=10,
            tls_params=aiomqtt.TLSParameters() if m.tls else None,
            max_queued_outgoing_messages=200,
            timeout=5,
        )
        limit_inbound(client, self.max_packet, mqtt5)
        return client

    async def run(self) -> None:
        """Connect, serve, and on any failure reconnect with capped back-off,
        until close().  Never raises: whatever goes wrong in here is one log
        line, and the robot runs on without its broker."""
        delay = RECONNECT_MIN
        while True:
            served = await self._connection()
            if self._stopping:
                return
            if served:
                delay = RECONNECT_MIN
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
            delay = min(delay * 2, RECONNECT_MAX)

    async def _connection(self) -> bool:
        """One connection, from connecting until it fails or close() ends it;
        True if it got as far as serving."""
        where = f"{self.mqtt.host}:{self.mqtt.port}"
        served = False
        try:
            async with self._client() as client:
                served = True
                await self._session(client)
        except MqttConnectError as exc:
            self._refused(exc)
        except aiomqtt.MqttError as exc:
            self._say(f"MQTT: broker {where} unreachable ({exc})")
        except Exception as exc:  # a bug, or an input nobody foresaw
            self._say(
                f"MQTT: unexpected {type(exc).__name__} in the bridge ({exc}); "
                "retrying, the robot runs on without it",
                logging.ERROR,
            )
        finally:
            self.connected, self._live = False, None
        return served

    def _refused(self, exc: MqttConnectError) -> None:
        where = f"{self.mqtt.host}:{self.mqtt.port}"
        code = getattr(exc.rc, "value", exc.rc)
        if code == UNSUPPORTED_PROTOCOL and self._protocol == aiomqtt.ProtocolVersion.V5:
            self._protocol = aiomqtt.ProtocolVersion.V311
            self._say(
                f"MQTT: the broker {where} does not speak MQTT 5; using 3.1.1, where the "
                "bridge alone keeps retained commands and oversized messages out"
            )
            return
        reason = REFUSED_CODES.get(code)
        self._say(
            f"MQTT: the broker {where} refused us: {reason}; check mqtt.username and the password"
            if reason
            else f"MQTT: the broker {where} refused us ({exc})",
            logging.ERROR if reason else logging.WARNING,
        )

    def _say(self, text: str, level: int = logging.WARNING) -> None:
        """One line per change of situation, not one per retry."""
        if text != self._last_problem:
            self._last_problem = text
            log.log(logging.INFO if text.startswith("MQTT: connected") else level, "%s", text)

    async def _session(self, client: aiomqtt.Client) -> None:
        self.connected, self._live = True, client
        self._noted.clear()
        self._say(f"MQTT: connected to {self.mqtt.host}:{self.mqtt.port} as {self.base}")
        await client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        for topic in self._commands:
            await self._subscribe_live(client, topic)
        if self._ha_config:
            await self._forget_gone_parts(client)
        if self._ha_status:
            await client.subscribe(self._ha_status, qos=1)
            await self._announce(client)
        await self._republish_state(client)
        # Either side failing ends the session, and run() reconnects; close()
        # setting _stop ends it too.
        await _first_to_end(self._send(client), self._listen(client), self._stop.wait())

    async def _subscribe_live(self, client: aiomqtt.Client, topic: str) -> None:
        """Subscribe to a command topic.  MQTT 5 can ask the broker not to send
        what is retained there; _receive ignores a retained command anyway, for
        3.1.1 and for any broker that sends it regardless."""
        if self._protocol == aiomqtt.ProtocolVersion.V5:
            live_only = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            await client.subscribe(topic, options=live_only)
        else:
            await client.subscribe(topic, qos=1)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self._receive(client, message)
            if self._stopping:
                return
        raise aiomqtt.MqttError("the broker closed the connection")

    async def _receive(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        action = self._commands.get(topic)
        if topic == OVERSIZED:
            self._ignore(
                "dropped_oversized_messages",
                f"dropped a message over {self.max_packet} bytes from the broker",
            )
        elif action and message.retain:
            self._ignore(
                "ignored_retained_commands",
                f"ignored a retained {action} on {topic}: commands act only when sent live",
            )
        elif action and not message.payload:
            self._ignore("ignored_empty_commands", f"ignored an empty {action} on {topic}")
        elif action:
            try:
                await self.command(action, f"mqtt ({topic})")
            except Exception as exc:  # the engine refused: say so, keep the bridge up
                log.warning("MQTT %s refused: %s", action, exc)
        elif topic == self._ha_status and message.payload == b"online":
            log.info("MQTT: Home Assistant is online: discovery sent again")
            await self._announce(client)
            await self._republish_state(client)

    def _ignore(self, kind: str, text: str) -> None:
        """Count a message we did not act on; say so once per kind and connection
        (a broker can deliver thousands, and each would be a line)."""
        self.ignored[kind] += 1
        if kind not in self._noted:
            self._noted.add(kind)
            log.warning("MQTT: %s (more on this connection are counted, not logged)", text)

    async def _send(self, client: aiomqtt.Client) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETAIN_PERIOD):
                    await self._wake.wait()
            self._wake.clear()
            while self._queue and not self._stopping:
                event = self._queue.get()
                await self._publish(client, f"{self.base}/events", events.encode(event))
                await self._state_of(client, event)
            await self._flush_sensors(client)
            if not self._queue:
                self._caught_up()

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str, **kw: Any) -> None:
        """Publish, or count a drop when the client's own outgoing queue is full
        (a broker that stopped reading); any other failure ends the session."""
        try:
            await client.publish(topic, payload, **kw)
        except aiomqtt.MqttCodeError as exc:
            if getattr(exc.rc, "value", exc.rc) != paho.MQTT_ERR_QUEUE_SIZE:
                raise
            self._count_drop()
            await asyncio.sleep(0.05)  # let the broker catch up before the next one
        else:
            self._delivered = True

    async def _state_of(self, client: aiomqtt.Client, event: dict[str, Any]) -> None:
        data, stamp = event["data"], event["timestamp"]
        if event["type"] == events.ACTUATOR and "wheel_speeds" not in data:
            # A drive's measured wheel speeds (5 a second) change no state.
            await self._retain_actuator(
                client, data["actuator_name"], data["state"], data["actuator_type"], stamp
            )
        elif event["type"] == events.SENSOR:
            self._retain_sensor(
                data["sensor_name"], data["value"], data["unit"], data["sensor_type"], stamp
            )
        elif event["type"] == events.REFLEX and data["reflex_name"] == ESTOP_REFLEX:
            await self._retain_latch(client, data["triggered"])

    async def _retain_actuator(
        self, client: aiomqtt.Client, name: str, state: str, kind: str, stamp: str
    ) -> None:
        payload = json.dumps({"state": state, "type": kind, "timestamp": stamp})
        await self._publish(client, f"{self.base}/actuator/{name}", payload, qos=1, retain=True)

    async def _retain_latch(self, client: aiomqtt.Client, latched: bool) -> None:
        await self._publish(
            client, estop_topic(self.base), ON if latched else OFF, qos=1, retain=True
        )

    def _retain_sensor(self, name: str, value: float, unit: str, kind: str, stamp: str) -> None:
        """The latest reading, published by _flush_sensors at most once a second."""
        self._latest_sensor[name] = {"value": value, "unit": unit, "type": kind, "timestamp": stamp}

    async def _flush_sensors(self, client: aiomqtt.Client) -> None:
        now = time.monotonic()
        for name, payload in list(self._latest_sensor.items()):
            if now - self._sensor_sent.get(name, 0.0) >= RETAIN_PERIOD:
                self._sensor_sent[name] = now
                del self._latest_sensor[name]
                topic = f"{self.base}/sensor/{name}"
                await self._publish(client, topic, json.dumps(payload), retain=True)

    async def _republish_state(self, client: aiomqtt.Client) -> None:
        """After a (re)connect: the retained state of every sensor and actuator."""
        world = self.snapshot()["data"]
        stamp = events.timestamp()
        kinds = {a.name: a.type for a in self.config.actuators}
        for name, state in world["actuators"].items():
            await self._retain_actuator(client, name, state, kinds[name], stamp)
        await self._retain_latch(client, world["estop_latched"])
        for name, s in world["sensors"].items():
            if s["value"] is not None:
                self._retain_sensor(name, s["value"], s["unit"], s["type"], stamp)
                self._sensor_sent.pop(name, None)  # due now, not in a second
        await self._flush_sensors(client)

    async def _announce(self, client: aiomqtt.Client) -> None:
        payload = json.dumps(discovery(self.config, self.base, self._gone))
        await client.publish(self._ha_config, payload, qos=1, retain=True)

    async def _forget_gone_parts(self, client: aiomqtt.Client) -> None:
        """Read back the discovery config the broker kept from the last run;
        the parts it has and this run does not (a sensor renamed or removed)
        are announced as removed, and their retained states cleared (an empty
        retained message deletes one), so Home Assistant keeps no ghost."""
        retained = await self._retained(client, self._ha_config)
        if retained is None:
            return
        gone, stale = leftovers(retained, discovery(self.config, self.base), self.base)
        for topic in stale:
            await client.publish(topic, b"", qos=1, retain=True)
        if gone:
            log.info("MQTT: removed from Home Assistant: %s", ", ".join(sorted(gone)))
        self._gone.update(gone)

    async def _retained(self, client: aiomqtt.Client, topic: str) -> bytes | None:
        """The message retained on `topic`, or None if the broker has none
        (or holds one too big to take).  What else arrives meanwhile (a
        command) is handled as usual."""
        await client.subscribe(topic, qos=1)
        found = None
        messages = aiter(client.messages)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RETAINED_WITHIN):
                while True:
                    message = await anext(messages)
                    if message.topic.value == topic:
                        found = bytes(message.payload) if message.retain else None
                        break
                    await self._receive(client, message)
        await client.unsubscribe(topic)
        return found

    async def close(self, task: asyncio.Task | None) -> None:
        """Stop the bridge within a few seconds, whatever it is doing.  A clean
        stop says offline itself, on the live connection (the will is for when
        it cannot); neither step may hold up the shutdown."""
        live = self._live
        if live is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(OFFLINE_WITHIN):
                    await live.publish(f"{self.base}/status", "offline", qos=1, retain=True)
        # Only now: the session's loops end when they see it, and with them the
        # connection the "offline" needed.
        self._stopping = True
        self._stop.set()
        # Serving, a moment to disconnect cleanly; then cancelled until it has ended.
        grace = 0.5 if self.connected else 0.0
        if task is not None and not await _end([task], CLOSE_WITHIN, grace):
            log.error("MQTT: the bridge did not stop within %g s", CLOSE_WITHIN)
