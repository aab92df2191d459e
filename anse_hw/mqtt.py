"""The MQTT bridge (SPEC §14): many robots, one broker, Home Assistant on top.

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
  command/estop|reset  the E-stop latch of the control API (the broker's
                       credentials and ACLs decide who may publish there)
Home Assistant: one device at <discovery_prefix>/device/<robot_id>/config,
re-sent when <discovery_prefix>/status says online.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from anse_hw import __version__, events
from anse_hw.config import Config, MqttConfig
from anse_hw.drivers.kinds import SENSOR_KINDS

log = logging.getLogger("anse_hw.mqtt")

RECONNECT_MIN, RECONNECT_MAX = 1.0, 30.0
RETAIN_PERIOD = 1.0  # seconds between retained updates of one sensor
#: Broker answers that mean "these credentials will not work" (MQTT 3.1.1 and 5
#: reason codes): said once, not per retry.
REFUSED_CODES = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised (user name or password)",
}
DEVICE_CLASS = {"distance": "distance", "temperature": "temperature", "humidity": "humidity"}
HA_UNIT = {"°C": "°C", "%": "%", "cm": "cm"}


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
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._latest_sensor: dict[str, dict[str, Any]] = {}
        self._sensor_sent: dict[str, float] = {}
        self.connected = False
        self.dropped = 0
        self._last_problem = ""
        self._stopping = False
        self._live: aiomqtt.Client | None = None

    # -- fed by the daemon (event loop thread) ----------------------------------

    def offer(self, batch: list[dict[str, Any]]) -> None:
        queue = self._queue
        for event in batch:
            if len(queue) >= self.mqtt.queue:
                self._drop_one()
            queue.append(event)
        self._wake.set()

    def _drop_one(self) -> None:
        """Make room: the oldest telemetry first, a reflex/actuator event only if
        nothing else is left to drop."""
        queue = self._queue
        for i, event in enumerate(queue):
            if event["type"] in (events.SENSOR, events.WORLDMODEL):
                del queue[i]
                break
        else:
            queue.popleft()
        self.dropped += 1
        if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
            log.warning(
                "MQTT: %d events dropped while the broker is not taking them (queue %d)",
                self.dropped,
                self.mqtt.queue,
            )

    def state(self) -> dict[str, float]:
        """For /metrics."""
        return {
            "connected": int(self.connected),
            "queue_depth": len(self._queue),
            "dropped_events": self.dropped,
        }

    # -- the connection ---------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        m = self.mqtt
        return aiomqtt.Client(
            m.host,
            m.port,
            username=m.username,
            password=m.password,
            identifier=f"anse-hw-{m.robot_id}",
            will=aiomqtt.Will(f"{self.base}/status", "offline", qos=1, retain=True),
            keepalive=10,
            tls_params=aiomqtt.TLSParameters() if m.tls else None,
            max_queued_outgoing_messages=200,
            timeout=5,
        )

    async def run(self) -> None:
        """Connect, forward, and on any failure reconnect with capped back-off."""
        delay = RECONNECT_MIN
        while not self._stopping:
            try:
                async with self._client() as client:
                    self.connected, delay = True, RECONNECT_MIN
                    self._say(
                        f"MQTT: connected to {self.mqtt.host}:{self.mqtt.port} as {self.base}"
                    )
                    await self._session(client)
            except aiomqtt.MqttCodeError as exc:
                reason = REFUSED_CODES.get(getattr(exc.rc, "value", exc.rc))
                self._say(
                    f"MQTT: the broker {self.mqtt.host}:{self.mqtt.port} refused us: {reason}; "
                    "check mqtt.username and the password"
                    if reason
                    else f"MQTT: {exc}",
                    logging.ERROR if reason else logging.WARNING,
                )
            except aiomqtt.MqttError as exc:
                self._say(f"MQTT: broker {self.mqtt.host}:{self.mqtt.port} unreachable ({exc})")
            self.connected = False
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _say(self, text: str, level: int = logging.WARNING) -> None:
        """One line per change of situation, not one per retry."""
        if text != self._last_problem:
            self._last_problem = text
            log.log(logging.INFO if text.startswith("MQTT: connected") else level, "%s", text)

    async def _session(self, client: aiomqtt.Client) -> None:
        self._live = client
        await client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        await client.subscribe(f"{self.base}/command/estop", qos=1)
        await client.subscribe(f"{self.base}/command/reset", qos=1)
        discovery = self.mqtt.discovery_prefix
        if discovery:
            await client.subscribe(f"{discovery}/status", qos=1)
            await self._announce(client)
        await self._republish_state(client)
        try:
            # Either side failing ends the session, and run() reconnects.
            async with asyncio.TaskGroup() as session:
                session.create_task(self._send(client))
                session.create_task(self._listen(client))
        except* aiomqtt.MqttError as failed:
            raise failed.exceptions[0] from None

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self._receive(client, message)
        raise aiomqtt.MqttError("the broker closed the connection")

    async def _receive(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        if topic in (f"{self.base}/command/estop", f"{self.base}/command/reset"):
            action = topic.rsplit("/", 1)[1]
            try:
                await self.command(action, f"mqtt ({topic})")
            except Exception as exc:  # the engine refused: say so, keep the bridge up
                log.warning("MQTT %s refused: %s", action, exc)
        elif topic == f"{self.mqtt.discovery_prefix}/status" and message.payload == b"online":
            log.info("MQTT: Home Assistant is online: discovery sent again")
            await self._announce(client)
            await self._republish_state(client)

    async def _send(self, client: aiomqtt.Client) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETAIN_PERIOD)
            self._wake.clear()
            while self._queue:
                event = self._queue.popleft()
                await self._publish(client, f"{self.base}/events", events.encode(event))
                await self._state_of(client, event)
            await self._flush_sensors(client)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str, **kw: Any) -> None:
        """Publish, or count a drop when the client's own outgoing queue is full
        (a broker that stopped reading); any other failure ends the session."""
        try:
            await client.publish(topic, payload, **kw)
        except aiomqtt.MqttCodeError as exc:
            if getattr(exc.rc, "value", exc.rc) != paho.MQTT_ERR_QUEUE_SIZE:
                raise
            self.dropped += 1
            await asyncio.sleep(0.05)  # let the broker catch up before the next one

    async def _state_of(self, client: aiomqtt.Client, event: dict[str, Any]) -> None:
        data, stamp = event["data"], event["timestamp"]
        if event["type"] == events.ACTUATOR:
            await self._retain_actuator(
                client, data["actuator_name"], data["state"], data["actuator_type"], stamp
            )
        elif event["type"] == events.SENSOR:
            self._retain_sensor(
                data["sensor_name"], data["value"], data["unit"], data["sensor_type"], stamp
            )

    async def _retain_actuator(
        self, client: aiomqtt.Client, name: str, state: str, kind: str, stamp: str
    ) -> None:
        payload = json.dumps({"state": state, "type": kind, "timestamp": stamp})
        await self._publish(client, f"{self.base}/actuator/{name}", payload, qos=1, retain=True)

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
        for name, s in world["sensors"].items():
            if s["value"] is not None:
                self._retain_sensor(name, s["value"], s["unit"], s["type"], stamp)
                self._sensor_sent.pop(name, None)  # due now, not in a second
        await self._flush_sensors(client)

    async def _announce(self, client: aiomqtt.Client) -> None:
        topic = f"{self.mqtt.discovery_prefix}/device/{self.mqtt.robot_id}/config"
        await client.publish(topic, json.dumps(self.discovery()), qos=1, retain=True)

    def discovery(self) -> dict[str, Any]:
        """Home Assistant's device-based discovery payload: one device, its parts."""
        rid = self.mqtt.robot_id
        components: dict[str, dict[str, Any]] = {}
        for sensor in self.config.sensors:
            kind = SENSOR_KINDS[sensor.type]
            state = {
                "state_topic": f"{self.base}/sensor/{sensor.name}",
                "name": sensor.name,
                "unique_id": f"anse_{rid}_{sensor.name}",
            }
            if kind.binary:
                components[f"{rid}_{sensor.name}"] = {
                    "p": "binary_sensor",
                    **state,
                    "value_template": "{{ 'ON' if value_json.value >= 0.5 else 'OFF' }}",
                }
            else:
                components[f"{rid}_{sensor.name}"] = {
                    "p": "sensor",
                    **state,
                    "device_class": DEVICE_CLASS[kind.name],
                    "unit_of_measurement": HA_UNIT[kind.unit],
                    "state_class": "measurement",
                    "value_template": "{{ value_json.value }}",
                }
        for actuator in self.config.actuators:
            components[f"{rid}_{actuator.name}"] = {
                "p": "sensor",
                "name": actuator.name,
                "unique_id": f"anse_{rid}_{actuator.name}",
                "state_topic": f"{self.base}/actuator/{actuator.name}",
                "value_template": "{{ value_json.state }}",
            }
        for action in ("estop", "reset"):
            components[f"{rid}_{action}"] = {
                "p": "button",
                "name": "E-stop" if action == "estop" else "Reset E-stop",
                "unique_id": f"anse_{rid}_{action}",
                "command_topic": f"{self.base}/command/{action}",
                "payload_press": "PRESS",
            }
        return {
            "dev": {
                "ids": f"anse_{rid}",
                "name": f"anse-hw {rid}",
                "mf": "anse-hw",
                "sw": __version__,
            },
            "o": {"name": "anse-hw", "sw": __version__},
            "cmps": components,
            "avty_t": f"{self.base}/status",
            "pl_avail": "online",
            "pl_not_avail": "offline",
            "qos": 1,
        }

    async def close(self, task: asyncio.Task | None) -> None:
        """A clean stop says offline itself, on the live connection (the will is
        for when it cannot); neither step may hold up the shutdown."""
        self._stopping = True
        # _send ends on _stopping, not only on the cancel below: Python 3.11's
        # wait_for (here and inside aiomqtt) can drop a cancel that comes as
        # its wait ends, and a loop that then goes on kept the shutdown waiting.
        self._wake.set()
        live = self._live
        if live is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(2):
                    await live.publish(f"{self.base}/status", "offline", qos=1, retain=True)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(2):
                    await task
