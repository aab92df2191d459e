"""Plain HTTP on the stream's port: routing, the dashboard's files, /healthz, /metrics.

websockets hands every request to `process_request` before any handshake;
`Routes.process_request` answers it (a `Response`) or lets a WebSocket
upgrade through (None) once the hub has admitted it.  The hub does the
fan-out and the connections; this module decides what a request gets.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from anse_hw.metrics import Sources
from anse_hw.web.api import ControlApi

log = logging.getLogger(__name__)

#: The dashboard's file types (mimetypes would read the system's tables for three).
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}

#: Headers a request may carry once: with two, which one counts (the origin,
#: the credentials, the host they are compared with) would be up to the client.
SINGLE_HEADERS = ("Host", "Origin", "Cookie", "Authorization", "Upgrade")

#: Telemetry rates a client may ask for with ?max_hz=N.
MAX_HZ_RANGE = (0.1, 1000.0)


def dashboard_dir() -> Path | None:
    """The dashboard ships inside the package, so every kind of install (venv,
    `--user`, system, pipx, editable) finds it beside this file.  None only if
    a repackager stripped it: the server then says so instead of serving 404s."""
    candidate = Path(__file__).resolve().parent / "dashboard"
    return candidate if (candidate / "index.html").is_file() else None


class Routes:
    """What each plain HTTP request gets.  `admit` is the hub's say on a
    WebSocket upgrade (None lets it through); `figures` its side of /healthz."""

    def __init__(
        self,
        *,
        dashboard: bool,
        health: Callable[[], dict[str, Any]],
        admit: Callable[[Request], Response | None],
        figures: Callable[[], dict[str, float]],
        api: ControlApi | None = None,
        metrics: Sources | None = None,
    ) -> None:
        self.health = health
        self.admit = admit
        self.figures = figures
        self.api = api
        self.metrics = metrics
        self.started = time.monotonic()
        self.dashboard = dashboard_dir() if dashboard else None
        self.dashboard_files = {
            file.name: file
            for file in (self.dashboard.iterdir() if self.dashboard else ())
            if file.is_file()
        }

    async def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        repeated = repeated_header(request.headers)
        if repeated:
            return text_response(HTTPStatus.BAD_REQUEST, f"{repeated} is given more than once")
        path = request_path(request.path)
        if path.startswith("/api/"):
            if self.api is None:
                return text_response(HTTPStatus.NOT_FOUND, "operator control is off")
            return await self.api.handle(ws, request, path)
        if request.method != "GET":
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED, "GET only here")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return self.admit(request)
        if path == "/healthz":
            return self._healthz()
        if path == "/metrics" and self.metrics is not None:
            from anse_hw.web.exposition import render  # prometheus_client, on the first scrape

            accept = request.headers.get("Accept", "")
            return response(HTTPStatus.OK, *render(self.metrics, accept))
        return self._static(path)

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
        return response(status, json.dumps(body).encode(), "application/json")

    def _static(self, path: str) -> Response:
        if self.dashboard is None:
            return text_response(
                HTTPStatus.NOT_FOUND,
                "the dashboard is not installed or is "
                "turned off (server.dashboard); the event stream is here",
            )
        # Only the files that were there at start: a request path never reaches
        # the filesystem, so no traversal, NUL byte or overlong name can either.
        file = self.dashboard_files.get("index.html" if path in ("/", "") else path[1:])
        if file is None:
            return text_response(HTTPStatus.NOT_FOUND, "not found")
        kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        try:
            return response(HTTPStatus.OK, file.read_bytes(), kind)
        except OSError as exc:
            log.warning("cannot serve %s: %s", file, exc.strerror)
            return text_response(HTTPStatus.NOT_FOUND, "not found")


def response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def text_response(status: HTTPStatus, line: str) -> Response:
    """One line of plain text saying why."""
    return response(status, f"{line}\n".encode(), "text/plain")


def repeated_header(headers: Headers) -> str | None:
    """The first of SINGLE_HEADERS given more than once, if any."""
    return next((name for name in SINGLE_HEADERS if len(headers.get_all(name)) > 1), None)


def request_path(target: str) -> str:
    """The path of an origin-form request target.  Not urlsplit: it reads
    `//host/x` as a network location and raises on `//[`."""
    return target.partition("?")[0].partition("#")[0]


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
