"""One port for everything: the dashboard over HTTP, /healthz, and the event stream.

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
import math
import socket
import time
from collections.abc import Callable, Hashable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from anse_hw import events
from anse_hw.config import ServerConfig
from anse_hw.metrics import Sources
from anse_hw.web.api import ControlApi
from anse_hw.web.httpbody import BodyConnection
from anse_hw.web.outbox import Outbox

log = logging.getLogger(__name__)

#: Kernel send buffer per client (Linux doubles it for bookkeeping), and the
#: asyncio transport's high-water mark on top of it.  About 80 KiB in flight
#: per client: plenty for a dashboard, and 1000 clients stay under 100 MB of
#: kernel memory instead of autotuning towards 4 MB each.
SEND_BUFFER_BYTES = 32 * 1024
WRITE_LIMIT_BYTES = 16 * 1024


#: The dashboard's file types (mimetypes would read the system's tables for three).
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def dashboard_dir() -> Path | None:
    """The dashboard ships inside the package, so every kind of install (venv,
    `--user`, system, pipx, editable) finds it beside this file.  None only if
    a repackager stripped it: the server then says so instead of serving 404s."""
    candidate = Path(__file__).resolve().parent / "dashboard"
    return candidate if (candidate / "index.html").is_file() else None


def conflation_key(event: dict[str, Any]) -> Hashable | None:
    """Telemetry may be replaced by a newer value; reflex/actuator never are."""
    if not events.is_telemetry(event):
        return None
    if event["type"] == events.SENSOR:
        return ("sensor", event["data"]["sensor_name"])
    return "worldmodel"


class StreamConnection(BodyConnection):
    """A connection that is dropped once its writes have been blocked for
    `stall_limit` seconds without a break.

    websockets' keepalive cannot catch a client that stopped reading: its
    ping waits behind the full buffers and is never sent, so it never times
    out, and such clients would keep their slots (and `max_clients`) forever,
    whether or not they keep sending.  The limit is the keepalive's own
    (`server.ping_interval`, also the time a ping may go unanswered): a client
    that cannot even be sent a ping for that long is treated as one that did
    not answer it.  A slow client that still reads resumes the transport now
    and then, and each resume starts the count again."""

    def __init__(self, protocol: Any, server: Any, *, stall_limit: float, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.stall_limit = stall_limit
        #: What dropping it means; the hub names the client here once it joins.
        self.on_stall: Callable[[], None] = self._abort_stalled
        self._stall_timer: asyncio.TimerHandle | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall_timer = self.loop.call_later(self.stall_limit, lambda: self.on_stall())

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall_timer()
        super().connection_lost(exc)

    def _cancel_stall_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _abort_stalled(self) -> None:
        log.warning(
            "✗ Connection from %s dropped: it read nothing for %g s", _peer(self), self.stall_limit
        )
        self.transport.abort()


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
        ws = self.ws
        return (
            not self.busy
            and not self.outbox  # None, or an empty Outbox (false while empty)
            and not ws.paused
            and ws.protocol.state is State.OPEN
        )

    def write_now(self, wire: Wire, after: int) -> None:
        """The frames with a seq above `after`, as one write."""
        protocol = self.ws.protocol
        if not protocol.extensions:
            data = wire.framed_after(after)
        else:  # compression: every connection frames its own way
            for seq, payload in zip(wire.seqs, wire.payloads, strict=True):
                if seq > after:
                    protocol.send_text(payload)
            data = b"".join(protocol.data_to_send())
        if data:
            self.ws.transport.write(data)


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
        metrics: Sources | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.metrics = metrics
        self.snapshot = snapshot
        self.health = health
        self.debug = debug
        self.clients: set[Client] = set()
        self.started = time.monotonic()
        self.dashboard = dashboard_dir() if config.dashboard else None
        self.dashboard_files = {
            file.name: file
            for file in (self.dashboard.iterdir() if self.dashboard else ())
            if file.is_file()
        }
        self._numbers = itertools.count(1)
        #: Connections being set up or served: counted before the snapshot is
        #: taken, so an event the engine makes after it is never skipped.
        self._expecting = 0
        #: The newest frame per telemetry key, for rate-limited clients.
        self.latest: dict[Hashable, tuple[int, str]] = {}

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
        self.clients.discard(client)
        log.warning("✗ Client %d dropped: %s", client.number, reason)
        client.ws.transport.abort()

    # -- connections ----------------------------------------------------------

    async def start(self) -> Server:
        c = self.config
        return await serve(
            self._serve_client,
            c.host,
            c.port,
            process_request=self._process_request,
            compression="deflate" if c.compression else None,
            max_size=c.max_message_bytes,
            ping_interval=c.ping_interval,
            ping_timeout=c.ping_interval,
            server_header="anse-hw",
            write_limit=WRITE_LIMIT_BYTES,
            create_connection=functools.partial(StreamConnection, stall_limit=c.ping_interval),
        )

    async def _serve_client(self, ws: StreamConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            # A fixed kernel send buffer instead of autotuning (up to 4 MB per client):
            # a stalled client's backlog shows up in our outbox, where it is conflated.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
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
        max_hz = stream_options(ws.request.path)  # validated in _process_request
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
            self.clients.discard(client)
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

    # -- plain HTTP on the same port ----------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        repeated = repeated_header(request.headers)
        if repeated:
            return _response(
                HTTPStatus.BAD_REQUEST,
                f"{repeated} is given more than once\n".encode(),
                "text/plain",
            )
        path = request_path(request.path)
        if path.startswith("/api/"):
            if self.api is None:
                return _response(HTTPStatus.NOT_FOUND, b"operator control is off\n", "text/plain")
            return await self.api.handle(ws, request, path)
        if request.method != "GET":
            return _response(HTTPStatus.METHOD_NOT_ALLOWED, b"GET only here\n", "text/plain")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if len(self.clients) >= self.config.max_clients:
                log.warning(
                    "refused a connection: %d clients is the limit (server.max_clients)",
                    self.config.max_clients,
                )
                return _response(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    b"too many clients (server.max_clients)\n",
                    "text/plain",
                )
            try:
                stream_options(request.path)
            except ValueError as exc:
                return _response(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), "text/plain")
            return None
        if path == "/healthz":
            return self._healthz()
        if path == "/metrics" and self.metrics is not None:
            from anse_hw.web.exposition import render  # prometheus_client, on the first scrape

            return _response(HTTPStatus.OK, *render(self.metrics))
        return self._static(path)

    def figures(self) -> dict[str, float]:
        """The stream's side of /metrics."""
        return {
            "clients": len(self.clients),
            "clients_behind": sum(
                1 for c in self.clients if c.outbox is not None and c.outbox.behind
            ),
            "frames_conflated": sum(
                c.outbox.conflated for c in self.clients if c.outbox is not None
            ),
        }

    def _healthz(self) -> Response:
        health = self.health()
        stale = health.pop("stale_watched")
        body = {
            "status": "stale" if stale else "ok",
            "stale_sensors": sorted(stale),
            "uptime_s": round(time.monotonic() - self.started, 1),
            **self.figures(),
            **health,
        }
        status = HTTPStatus.SERVICE_UNAVAILABLE if stale else HTTPStatus.OK
        return _response(status, json.dumps(body).encode(), "application/json")

    def _static(self, path: str) -> Response:
        if self.dashboard is None:
            return _response(
                HTTPStatus.NOT_FOUND,
                b"the dashboard is not installed or is "
                b"turned off (server.dashboard); the event stream is here\n",
                "text/plain",
            )
        # Only the files that were there at start: a request path never reaches
        # the filesystem, so no traversal, NUL byte or overlong name can either.
        file = self.dashboard_files.get("index.html" if path in ("/", "") else path[1:])
        if file is None:
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        try:
            return _response(HTTPStatus.OK, file.read_bytes(), kind)
        except OSError as exc:
            log.warning("cannot serve %s: %s", file, exc.strerror)
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


#: Headers a request may carry once: with two, which one counts (the origin,
#: the credentials, the host they are compared with) would be up to the client.
SINGLE_HEADERS = ("Host", "Origin", "Cookie", "Authorization", "Upgrade")


def repeated_header(headers: Headers) -> str | None:
    """The first of SINGLE_HEADERS given more than once, if any."""
    return next((name for name in SINGLE_HEADERS if len(headers.get_all(name)) > 1), None)


def _peer(ws: ServerConnection) -> str:
    return ws.remote_address[0] if ws.remote_address else "?"


def request_path(target: str) -> str:
    """The path of an origin-form request target.  Not urlsplit: it reads
    `//host/x` as a network location and raises on `//[`."""
    return target.partition("?")[0].partition("#")[0]


#: Telemetry rates a client may ask for with ?max_hz=N.
MAX_HZ_RANGE = (0.1, 1000.0)


def stream_options(path: str) -> float | None:
    """The stream's one query parameter, `max_hz`; ValueError says what is wrong."""
    query = parse_qs(path.partition("?")[2], keep_blank_values=True)
    unknown = sorted(set(query) - {"max_hz"})
    if unknown:
        raise ValueError(f"unknown query parameter {unknown[0][:40]!r}; the stream takes max_hz")
    if "max_hz" not in query:
        return None
    low, high = MAX_HZ_RANGE
    values = query["max_hz"]
    try:
        value = float(values[0])
    except ValueError:
        value = math.nan
    if len(values) != 1 or not low <= value <= high:  # also NaN and inf
        raise ValueError(f"max_hz must be one number of updates per second, {low:g} to {high:g}")
    return value
