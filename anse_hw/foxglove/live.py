"""The live view: a sink like the recorder, fed the same readings and events,
publishing them to Foxglove as they come.

The engine's thread and the event loop only append to a bounded queue (a
short lock, never a socket): the view's own thread takes from it and logs to
the SDK's channels, whose server sends on threads of its own.  So a slow or
stalled Foxglove client cannot delay a reflex; when the queue is full the
oldest telemetry goes first, and the drops are counted and said.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from anse_hw import events
from anse_hw.channels import (
    EVENT_SCHEMA,
    EVENTS_TOPIC,
    READING_SCHEMA,
    READINGS_TOPIC,
    WORLDMODEL_SCHEMA,
    WORLDMODEL_TOPIC,
)
from anse_hw.errors import DriverError
from anse_hw.eventqueue import EventQueue
from anse_hw.readings import Sample

log = logging.getLogger(__name__)

#: About a minute of pi-robot.yaml's messages: a client that stalls longer
#: than that loses the oldest telemetry, never a reflex or actuator event.
QUEUE = 20_000
#: The longest the thread sleeps before it looks at the queue again.
NAP = 0.05
EXTRA = "pip install 'anse-hw[foxglove]'"


class LiveView:
    def __init__(self, host: str, port: int, sensors: Iterable[str]) -> None:
        self.host = host
        self.port = port
        self.sensors = tuple(sensors)
        self.started = time.monotonic()
        self.origin_ns = time.time_ns()  # log_time = this + seconds since `started`
        self.dropped = 0
        self._queue: EventQueue[tuple[str, Any, float]] = EventQueue(QUEUE)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._server: Any = None
        self._context: Any = None
        self._channels: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="foxglove", daemon=True)

    def start(self) -> None:
        """Listen (the SDK's server) and advertise every channel; a DriverError
        in one line when the extra is missing or the port cannot be had."""
        try:
            import foxglove
        except ImportError:
            raise DriverError(
                f"foxglove: the live view needs the foxglove extra ({EXTRA})"
            ) from None
        # Our own context, kept for as long as the view runs: the SDK closes
        # a context's channels when the last reference to it goes.
        context = self._context = foxglove.Context()
        try:
            self._server = foxglove.start_server(
                name="anse-hw", host=self.host, port=self.port, context=context
            )
        except Exception as exc:  # the SDK raises its own error for a port in use
            raise DriverError(
                f"foxglove: cannot listen on {self.host}:{self.port}: {exc}"
            ) from None
        self.port = self._server.port

        def channel(topic: str, schema: dict[str, Any]) -> Any:
            return foxglove.Channel(
                topic,
                schema=foxglove.Schema(
                    name=schema["title"], encoding="jsonschema", data=json.dumps(schema).encode()
                ),
                message_encoding="json",
                context=context,
            )

        self._channels = {
            EVENTS_TOPIC: channel(EVENTS_TOPIC, EVENT_SCHEMA),
            WORLDMODEL_TOPIC: channel(WORLDMODEL_TOPIC, WORLDMODEL_SCHEMA),
            **{name: channel(f"{READINGS_TOPIC}{name}", READING_SCHEMA) for name in self.sensors},
        }
        self._thread.start()

    # -- fed by the engine and the daemon: appends only -------------------------

    def reading(self, name: str, sample: Sample, arrived: float) -> None:
        data = {"sensor": name, "value": sample.value, "problem": sample.problem}
        self._put(name, data, arrived, telemetry=False)

    def fault(self, name: str, text: str, active: bool) -> None:
        data = {"sensor": name, "value": None, "fault": text, "active": active}
        self._put(name, data, time.monotonic(), telemetry=False)

    def offer(self, batch: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for event in batch:
            self._put(EVENTS_TOPIC, event, now, events.is_telemetry(event))

    def _put(self, topic: str, data: dict[str, Any], when: float, telemetry: bool) -> None:
        with self._lock:
            dropped = self._queue.put((topic, data, when), telemetry)
        if dropped:
            self.dropped += 1
            if self.dropped in (1, 100) or self.dropped % 10_000 == 0:
                log.warning(
                    "foxglove: %d telemetry messages dropped (a client too slow)", self.dropped
                )
        self._wake.set()

    def _take(self) -> tuple[str, Any, float] | None:
        with self._lock:
            return self._queue.get() if self._queue else None

    # -- the view's thread -----------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(NAP)
            self._wake.clear()
            while (queued := self._take()) is not None:
                self._log(*queued)

    def _log(self, topic: str, data: dict[str, Any], when: float) -> None:
        stamp = self.origin_ns + int((when - self.started) * 1e9)
        if topic == EVENTS_TOPIC:
            self._channels[EVENTS_TOPIC].log(json.dumps(data).encode(), log_time=stamp)
            if data["type"] == events.WORLDMODEL:
                self._channels[WORLDMODEL_TOPIC].log(
                    json.dumps(data["data"]).encode(), log_time=stamp
                )
            return
        channel = self._channels.get(topic)
        if channel is not None:
            data = {**data, "arrived": round(when - self.started, 6)}
            channel.log(json.dumps(data).encode(), log_time=stamp)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.stop()
