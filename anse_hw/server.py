"""One port for everything: the dashboard over HTTP, /healthz, and the event stream.

Fan-out is decoupled from the engine: `Hub.publish` runs on the event loop,
encodes each event once and pushes the frame into every client's bounded
`Outbox`; a writer task per client drains its own outbox.  A slow client only
ever slows its own writer (and gets conflated), never the others or the
reflex arc, which never waits on this module at all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import mimetypes
import socket
import sys
import time
from collections.abc import Callable, Hashable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from anse_hw import events
from anse_hw.config import ServerConfig
from anse_hw.outbox import Outbox

log = logging.getLogger("anse_hw.server")

#: Kernel send buffer per client (Linux doubles it for bookkeeping), and the
#: asyncio transport's high-water mark on top of it.  About 80 KiB in flight
#: per client: plenty for a dashboard, and 1000 clients stay under 100 MB of
#: kernel memory instead of autotuning towards 4 MB each.
SEND_BUFFER_BYTES = 32 * 1024
WRITE_LIMIT_BYTES = 16 * 1024


def dashboard_dir() -> Path | None:
    """The dashboard beside the source tree, or where `pip install` put it."""
    for candidate in (
        Path(__file__).resolve().parent.parent / "dashboard",
        Path(sys.prefix) / "share" / "anse-hw" / "dashboard",
    ):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def conflation_key(event: dict[str, Any]) -> Hashable | None:
    """Telemetry may be replaced by a newer value; reflex/actuator never are."""
    if event["type"] == events.SENSOR:
        return ("sensor", event["data"]["sensor_name"])
    if event["type"] == events.WORLDMODEL:
        return "worldmodel"
    return None


class Client:
    """One connection.  Full-rate clients are woken per batch; a client that
    asked for `max_hz` is flushed on its own timer instead."""

    def __init__(
        self, number: int, ws: ServerConnection, outbox: Outbox, joined: int, max_hz: float | None
    ) -> None:
        self.number = number
        self.ws = ws
        self.outbox = outbox
        self.joined = joined  # seq of the snapshot: older events are already in it
        self.telemetry_seq = joined  # rate-limited: telemetry sent up to here
        self.period = 1.0 / max_hz if max_hz else 0.0
        self.wake = asyncio.Event()
        self.dropped = False


class Hub:
    def __init__(
        self,
        config: ServerConfig,
        snapshot: Callable[[], dict[str, Any]],
        health: Callable[[], dict[str, Any]],
        debug: bool = False,
    ) -> None:
        self.config = config
        self.snapshot = snapshot
        self.health = health
        self.debug = debug
        self.clients: set[Client] = set()
        self.started = time.monotonic()
        self.dashboard = dashboard_dir() if config.dashboard else None
        self._numbers = itertools.count(1)
        #: The newest frame per telemetry key, for rate-limited clients.
        self.latest: dict[Hashable, tuple[int, str]] = {}

    # -- publishing (event loop thread) --------------------------------------

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Encode each event once; queue it for every client (O(1) per client)."""
        frames = [(conflation_key(e), events.encode(e), e["seq"]) for e in batch]
        critical = [f for f in frames if f[0] is None]
        for key, frame, seq in frames:
            if key is not None:
                self.latest[key] = (seq, frame)
        for client in tuple(self.clients):
            # Rate-limited clients take telemetry from `latest` when their timer fires.
            items = critical if client.period else frames
            if not items:
                continue
            outbox = client.outbox
            outbox.extend(items, client.joined)
            if outbox.overflowed:
                self._drop(client, f"fell {outbox.max_critical} reflex/actuator events behind")
            elif not client.period:
                client.wake.set()
        if self.debug:
            kinds = ", ".join(e["type"] for e in batch if e["type"] != events.WORLDMODEL)
            log.debug("[broadcast] %s → %d clients notified", kinds, len(self.clients))

    def _fresh_telemetry(self, client: Client) -> list[str]:
        """The newest value of each telemetry key this client has not been sent."""
        fresh = sorted(item for item in self.latest.values() if item[0] > client.telemetry_seq)
        if fresh:
            client.telemetry_seq = fresh[-1][0]
        return [frame for _, frame in fresh]

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
        )

    async def _serve_client(self, ws: ServerConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            # A fixed kernel send buffer instead of autotuning (up to 4 MB per client):
            # a stalled client's backlog shows up in our outbox, where it is conflated.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        query = parse_qs(urlsplit(ws.request.path).query)
        max_hz = _positive_float(query.get("max_hz", [None])[0])
        snapshot = self.snapshot()
        outbox = Outbox(max_critical=self.config.client_buffer)
        outbox.push(conflation_key(snapshot), events.encode(snapshot))
        client = Client(next(self._numbers), ws, outbox, snapshot["seq"], max_hz)
        client.wake.set()
        self.clients.add(client)
        peer = ws.remote_address[0] if ws.remote_address else "?"
        rate = f", max {max_hz:g} Hz" if max_hz else ""
        log.info(
            "→ Client %d connected from %s%s (%d total)",
            client.number,
            peer,
            rate,
            len(self.clients),
        )
        writer = asyncio.create_task(self._write(client))
        try:
            async for _ in ws:  # inbound messages are not part of the protocol
                pass
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self.clients.discard(client)
            if not client.dropped:
                log.info("← Client %d disconnected (%d remain)", client.number, len(self.clients))

    async def _write(self, client: Client) -> None:
        try:
            while True:
                if client.period:
                    frames = client.outbox.take() + self._fresh_telemetry(client)
                else:
                    await client.wake.wait()
                    client.wake.clear()
                    frames = client.outbox.take()
                for frame in frames:
                    await client.ws.send(frame)
                if client.period:
                    await asyncio.sleep(client.period)
        except ConnectionClosed:
            pass

    async def flush(self, timeout: float) -> None:
        """Give every client a moment to receive what is queued (used at shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(len(c.outbox) for c in self.clients):
            await asyncio.sleep(0.01)

    # -- plain HTTP on the same port ----------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
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
            return None
        path = urlsplit(request.path).path
        if path == "/healthz":
            return self._healthz()
        return self._static(path)

    def _healthz(self) -> Response:
        health = self.health()
        stale = health.pop("stale_watched")
        body = {
            "status": "stale" if stale else "ok",
            "stale_sensors": sorted(stale),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "clients": len(self.clients),
            "clients_behind": sum(1 for c in self.clients if c.outbox.behind),
            "frames_conflated": sum(c.outbox.conflated for c in self.clients),
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
        name = "index.html" if path in ("/", "") else path.lstrip("/")
        file = (self.dashboard / name).resolve()
        if file.parent != self.dashboard.resolve() or not file.is_file():
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return _response(HTTPStatus.OK, file.read_bytes(), kind)


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


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value and value > 0 else None
