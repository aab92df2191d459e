"""The event stream: fan-out to every WebSocket client, and their connections.

The same port serves plain HTTP (the dashboard, /healthz, /metrics, the
control API): web/http.py routes those requests.

Fan-out is decoupled from the engine: `Hub.publish` runs on the event loop
and encodes each event once.  A client that keeps up gets it written straight
to its socket, as `websockets.broadcast()` would; one that has fallen behind
gets a bounded `Outbox` and a writer task of its own (made the first time it
is needed, so a client that keeps up costs neither).  A slow client only ever
slows its own writer (and gets conflated), never the others or the reflex
arc, which never waits on this module at all.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import json
import logging
import time
from collections.abc import Callable, Hashable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from anse_hw import events
from anse_hw.metrics import EngineStats, Sources
from anse_hw.model import ServerConfig
from anse_hw.web import wsfast
from anse_hw.web.api import ControlApi
from anse_hw.web.http import Routes, stream_options, text_response
from anse_hw.web.outbox import Outbox
from anse_hw.web.wsfast import StreamConnection

log = logging.getLogger(__name__)

#: Kernel send buffer per client (Linux doubles it for bookkeeping), and the
#: asyncio transport's high-water mark on top of it.  About 80 KiB in flight
#: per client: plenty for a dashboard, and 1000 clients stay under 100 MB of
#: kernel memory instead of autotuning towards 4 MB each.
SEND_BUFFER_BYTES = 32 * 1024
WRITE_LIMIT_BYTES = 16 * 1024
#: The figures() that only ever grow: /metrics types them as counters.
COUNTED = frozenset({"frames_conflated"})


def conflation_key(event: dict[str, Any]) -> Hashable | None:
    """Telemetry may be replaced by a newer value; reflex/actuator never are."""
    if not events.is_telemetry(event):
        return None
    if event["type"] == events.SENSOR:
        return ("sensor", event["data"]["sensor_name"])
    return "worldmodel"


class Client:
    """One connection.  A full-rate client that keeps up is written to directly
    as each batch is published, the way `websockets.broadcast()` does; one that
    has fallen behind (its transport paused, frames queued) is served by its
    writer task from its outbox, which conflates.  A client that asked for
    `max_hz` is flushed on its own timer instead."""

    def __init__(
        self, number: int, ws: ServerConnection, joined: int, max_hz: float | None
    ) -> None:
        self.number = number
        self.ws = ws
        self.joined = joined  # seq of the snapshot: older events are already in it
        self.telemetry_seq = joined  # rate-limited: telemetry sent up to here
        self.period = 1.0 / max_hz if max_hz else 0.0
        self.dropped = False
        #: Made by Hub._queue when first needed: the backlog and its writer.
        self.outbox: Outbox | None = None
        self.wake: asyncio.Event | None = None
        self.tasks: list[asyncio.Task] = []
        self.busy = False  # its writer task is sending what it took from the outbox

    def keeping_up(self) -> bool:
        """Nothing queued or being sent, and the kernel takes what we write: a
        direct write cannot overtake an older frame or grow a backlog."""
        return (
            not self.busy
            and not self.outbox  # None, or an empty Outbox (false while empty)
            and wsfast.keeps_up(self.ws)
        )

    def write_now(self, wire: Wire, after: int) -> None:
        """The frames with a seq above `after`, as one write."""
        if wsfast.compresses(self.ws):  # every such connection frames its own way
            payloads = zip(wire.seqs, wire.payloads, strict=True)
            wsfast.write_texts(self.ws, (p for seq, p in payloads if seq > after))
        elif data := wire.framed_after(after):
            wsfast.write_frames(self.ws, data)


class Wire:
    """A batch ready for sockets.  A server's frames are not masked, so without
    compression every client gets the same bytes: each frame is built once
    per batch here, not once per client as `broadcast()` and `send()` do."""

    def __init__(self, frames: list[tuple[Hashable | None, str, int]]) -> None:
        self.seqs = [seq for _, _, seq in frames]
        self.payloads = [text.encode() for _, text, _ in frames]
        self.framed = [
            Frame(Opcode.TEXT, payload).serialize(mask=False) for payload in self.payloads
        ]
        self.whole = b"".join(self.framed)

    def framed_after(self, after: int) -> bytes:
        if self.seqs[0] > after:
            return self.whole
        return b"".join(f for seq, f in zip(self.seqs, self.framed, strict=True) if seq > after)


class Hub:
    def __init__(
        self,
        config: ServerConfig,
        snapshot: Callable[[], dict[str, Any]],
        health: Callable[[], dict[str, Any]],
        debug: bool = False,
        api: ControlApi | None = None,
        stats: Callable[[], EngineStats] | None = None,
        mqtt: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        """With `stats` (the engine's counters) it serves /metrics, with the
        MQTT bridge's `mqtt` state when there is a bridge."""
        self.config = config
        self.api = api
        self.snapshot = snapshot
        self.debug = debug
        self.clients: set[Client] = set()
        self.routes = Routes(
            dashboard=config.dashboard,
            health=health,
            admit=self._admit,
            figures=self.figures,
            api=api,
            metrics=Sources(stats, health, self.figures, mqtt) if stats else None,
        )
        self._numbers = itertools.count(1)
        #: Connections being set up or served: counted before the snapshot is
        #: taken, so an event the engine makes after it is never skipped.
        self._expecting = 0
        #: The newest frame per telemetry key, for rate-limited clients.
        self.latest: dict[Hashable, tuple[int, str]] = {}
        #: Frames conflated for clients that have left: a count that only
        #: grows, which a client leaving must not take down.
        self._conflated_gone = 0

    # -- publishing (event loop thread) --------------------------------------

    def listening(self) -> bool:
        """Someone is connected or connecting (read by the engine's threads)."""
        return self._expecting > 0

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Encode each event once; write it to every client that keeps up, queue
        it for the others (O(1) per client)."""
        frames = [(conflation_key(e), events.encode(e), e["seq"]) for e in batch]
        critical = [f for f in frames if f[0] is None]
        for key, frame, seq in frames:
            if key is not None:
                self.latest[key] = (seq, frame)
        wire = functools.cache(functools.partial(Wire, frames))  # built for the first taker
        for client in tuple(self.clients):
            # Rate-limited clients take telemetry from `latest` when their timer
            # fires; reflex and actuator events wake every client at once.
            items = critical if client.period else frames
            if items:
                self._send(client, items, wire, client.joined)
        if self.debug:
            kinds = ", ".join(e["type"] for e in batch if e["type"] != events.WORLDMODEL)
            log.debug("[broadcast] %s → %d clients notified", kinds, len(self.clients))

    def _send(
        self,
        client: Client,
        items: list[tuple[Hashable | None, str, int]],
        wire: Callable[[], Wire],
        after: int,
    ) -> None:
        """Straight to the socket while a full-rate client keeps up, else into
        its outbox.  `wire` is `items` made ready for sockets, on demand."""
        if not client.period and client.keeping_up():
            client.write_now(wire(), after)
        else:
            self._queue(client, items, after)

    def _queue(
        self, client: Client, items: list[tuple[Hashable | None, str, int]], after: int
    ) -> None:
        """Into the client's outbox, for its writer task (both made on first use)."""
        if client.outbox is None:
            client.outbox = Outbox(max_critical=self.config.client_buffer)
            client.wake = asyncio.Event()
            client.tasks.append(asyncio.create_task(self._write(client)))
        client.outbox.extend(items, after)
        if client.outbox.overflowed:
            self._drop(client, f"fell {client.outbox.max_critical} reflex/actuator events behind")
        else:
            client.wake.set()

    def _fresh_telemetry(self, client: Client) -> list[tuple[int, str]]:
        """The newest value of each telemetry key this client has not been sent."""
        fresh = sorted(item for item in self.latest.values() if item[0] > client.telemetry_seq)
        if fresh:
            client.telemetry_seq = fresh[-1][0]
        return fresh

    def _drop(self, client: Client, reason: str) -> None:
        client.dropped = True
        self._leave(client)
        log.warning("✗ Client %d dropped: %s", client.number, reason)
        wsfast.abort(client.ws)

    # -- connections ----------------------------------------------------------

    async def start(self) -> Server:
        c = self.config
        return await serve(
            self._serve_client,
            c.host,
            c.port,
            process_request=self.routes.process_request,
            compression="deflate" if c.compression else None,
            max_size=c.max_message_bytes,
            ping_interval=c.ping_interval,
            ping_timeout=c.ping_interval,
            server_header="anse-hw",
            write_limit=WRITE_LIMIT_BYTES,
            create_connection=functools.partial(StreamConnection, stall_limit=c.ping_interval),
        )

    async def _serve_client(self, ws: StreamConnection) -> None:
        # A stalled client's backlog shows up in our outbox, where it is
        # conflated, instead of in an autotuned kernel buffer.
        wsfast.limit_send_buffer(ws, SEND_BUFFER_BYTES)
        # Counted before the snapshot is taken: see `listening`.
        self._expecting += 1
        try:
            client = self._join(ws)
            ws.on_stall = lambda: self._drop(
                client, f"it read nothing for {ws.stall_limit:g} s (server.ping_interval)"
            )
            await self._serve(client)
        finally:
            self._expecting -= 1

    def _join(self, ws: ServerConnection) -> Client:
        """Snapshot first, then the stream.  Not a coroutine: the snapshot and
        its JSON are freed here instead of living on for the connection."""
        max_hz = stream_options(ws.request.path)  # validated in _admit
        snapshot = self.snapshot()
        client = Client(next(self._numbers), ws, snapshot["seq"], max_hz)
        first = [(conflation_key(snapshot), events.encode(snapshot), client.joined)]
        self._send(client, first, lambda: Wire(first), -1)
        if client.period:
            client.tasks.append(asyncio.create_task(self._tick(client)))
        self.clients.add(client)
        rate = f", max {max_hz:g} Hz" if max_hz else ""
        log.info(
            "→ Client %d connected from %s%s (%d total)",
            client.number,
            _peer(ws),
            rate,
            len(self.clients),
        )
        return client

    async def _serve(self, client: Client) -> None:
        ws = client.ws
        operator = self.api is not None and self.api.ws_operator(ws.request)
        try:
            async for message in ws:  # only an operator's dashboard sends anything
                if self.api is None:
                    continue
                answer = await self.api.ws_command(operator, _peer(ws), message)
                await ws.send(json.dumps({"type": "reply", "data": answer}))
        except ConnectionClosed:
            pass
        finally:
            for task in client.tasks:
                task.cancel()
            self._leave(client)
            if not client.dropped:
                log.info("← Client %d disconnected (%d remain)", client.number, len(self.clients))

    async def _write(self, client: Client) -> None:
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                frames = client.outbox.take()
                if client.period:
                    # With a reflex or actuator event goes the telemetry that
                    # explains it (the reading before, the world model after).
                    frames = list(heapq.merge(frames, self._fresh_telemetry(client)))
                client.busy = True
                try:
                    for _, frame in frames:
                        await client.ws.send(frame)  # waits while the transport is paused
                finally:
                    client.busy = False
        except ConnectionClosed:
            pass

    async def _tick(self, client: Client) -> None:
        """A rate-limited client's telemetry timer."""
        while True:
            await asyncio.sleep(client.period)
            client.wake.set()

    async def flush(self, timeout: float) -> None:
        """Give every client a moment to receive what is queued (used at shutdown)."""
        deadline = time.monotonic() + timeout
        # An Outbox is false while empty; None is a client that never fell behind.
        while time.monotonic() < deadline and any(c.outbox for c in self.clients):
            await asyncio.sleep(0.01)

    def _admit(self, request: Request) -> Response | None:
        """A WebSocket upgrade: refused while `max_clients` are connected or
        when its options are wrong, else let through to the handshake."""
        if len(self.clients) >= self.config.max_clients:
            log.warning(
                "refused a connection: %d clients is the limit (server.max_clients)",
                self.config.max_clients,
            )
            return text_response(
                HTTPStatus.SERVICE_UNAVAILABLE, "too many clients (server.max_clients)"
            )
        try:
            stream_options(request.path)
        except ValueError as exc:
            return text_response(HTTPStatus.BAD_REQUEST, str(exc))
        return None

    def _leave(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self._conflated_gone += client.outbox.conflated if client.outbox is not None else 0

    def figures(self) -> dict[str, float]:
        """The stream's side of /metrics and /healthz; `frames_conflated`
        counts since the start (COUNTED), whoever has left since."""
        return {
            "clients": len(self.clients),
            "clients_behind": sum(
                1 for c in self.clients if c.outbox is not None and c.outbox.behind
            ),
            "frames_conflated": self._conflated_gone
            + sum(c.outbox.conflated for c in self.clients if c.outbox is not None),
        }


def _peer(ws: ServerConnection) -> str:
    return ws.remote_address[0] if ws.remote_address else "?"
