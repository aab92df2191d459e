"""The control API on the stream's port (SPEC §13).

    POST /api/estop                  latched emergency stop
    POST /api/reset                  release the latch (moves nothing)
    POST /api/actuators/<name>       {"command": "stop"|"move"|"on"|"off"}
    POST /api/login                  token → HttpOnly, SameSite=Strict session cookie
    POST /api/logout
    GET  /api/session                {"operator": bool, "estop_latched": bool}

Commands need `Authorization: Bearer <token>` or the session cookie, and a
same-origin (or no) `Origin`: 401 and 403 otherwise, with a body saying why,
and answers to repeated bad tokens slow down.  The dashboard sends the same
commands over its WebSocket once logged in (`ws_command`).  Every command
ends in `Engine.operator`, the reflexes' own path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from anse_hw.control import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    Gate,
    save_latch,
    session_from_cookie,
)
from anse_hw.engine import Refused

log = logging.getLogger("anse_hw.api")

Operate = Callable[..., dict[str, Any]]


class ControlApi:
    def __init__(self, operate: Operate, latched: Callable[[], bool], gate: Gate, state_dir: Path):
        self.operate = operate
        self.latched = latched
        self.gate = gate
        self.state_dir = state_dir

    async def run(self, action: str, source: str, **target: Any) -> dict[str, Any]:
        """Command the engine (the pins are driven when it returns), then keep the
        latch on disk, off the event loop and off the reflex path."""
        result = self.operate(action, source, **target)
        if action in ("estop", "reset"):
            await asyncio.get_running_loop().run_in_executor(
                None, save_latch, self.state_dir, action == "estop", source
            )
        return result

    # -- HTTP --------------------------------------------------------------------

    async def handle(self, connection: Any, request: Request, path: str) -> Response:
        peer = connection.remote_address[0] if connection.remote_address else "?"
        if path == "/api/session" and request.method == "GET":
            operator = self.gate.session_ok(_session(request))
            return reply(200, {"operator": operator, "estop_latched": self.latched()})
        if request.method != "POST":
            return reply(405, {"error": f"{request.method} is not allowed here; use POST"})
        verdict = self.gate.check(
            peer,
            request.headers.get("Authorization"),
            request.headers.get("Cookie"),
            request.headers.get("Origin"),
            request.headers.get("Host"),
        )
        if not verdict.allowed:
            log.warning(
                "refused %s %s from %s: %s", request.method, path[:80], peer, verdict.reason
            )
            await asyncio.sleep(verdict.delay)
            return reply(verdict.status, {"error": verdict.reason})
        source = f"api ({peer})"
        try:
            if path == "/api/login":
                return self._login()
            if path == "/api/logout":
                return reply(200, {"operator": False}, cookie=f"{SESSION_COOKIE}=; Max-Age=0")
            if path in ("/api/estop", "/api/reset"):
                return reply(200, await self.run(path.rsplit("/", 1)[1], source))
            if path.startswith("/api/actuators/"):
                command = _command(getattr(connection, "request_body", b""))
                name = path.removeprefix("/api/actuators/")
                result = await self.run("command", source, actuator=name, command=command)
                return reply(200, result)
        except Refused as exc:
            return reply(exc.status, {"error": exc.reason})
        return reply(404, {"error": f"no such API: {path[:80]}"})

    def _login(self) -> Response:
        cookie = (
            f"{SESSION_COOKIE}={self.gate.new_session()}; HttpOnly; SameSite=Strict; "
            f"Path=/; Max-Age={SESSION_SECONDS}"
        )
        return reply(200, {"operator": True}, cookie=cookie)

    # -- the dashboard's WebSocket -----------------------------------------------

    def ws_operator(self, request: Request) -> bool:
        """May this WebSocket command?  Decided once, at the handshake."""
        headers = request.headers
        return self.gate.session_ok(_session(request)) and self.gate.origin_ok(
            headers.get("Origin"), headers.get("Host")
        )

    async def ws_command(self, operator: bool, peer: str, message: str | bytes) -> dict[str, Any]:
        """One message {"action": "estop"|"reset"|"command", "actuator", "command"}."""
        if not operator:
            return {"ok": False, "status": 401, "error": "log in first (POST /api/login)"}
        try:
            data = json.loads(message)
            if not isinstance(data, dict):
                raise ValueError
        except (ValueError, RecursionError):  # 4 KiB of '[' is nesting, not a command
            return {"ok": False, "status": 400, "error": "send a JSON object"}
        action = data.get("action")
        try:
            if action == "command":
                result = await self.run(
                    action,
                    f"dashboard ({peer})",
                    actuator=data.get("actuator"),
                    command=data.get("command"),
                )
            else:
                result = await self.run(str(action), f"dashboard ({peer})")
        except Refused as exc:
            return {"ok": False, "status": exc.status, "error": exc.reason}
        return {"ok": True, "result": result}


def _session(request: Request) -> str | None:
    return session_from_cookie(request.headers.get("Cookie"))


def _command(body: bytes) -> str | None:
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise Refused(400, 'the body must be JSON: {"command": "stop"}') from None
    command = data.get("command") if isinstance(data, dict) else None
    if not isinstance(command, str):
        raise Refused(400, 'the body must be JSON: {"command": "stop"}')
    return command


def reply(status: int, body: dict[str, Any], cookie: str | None = None) -> Response:
    payload = json.dumps(body).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    if cookie:
        headers["Set-Cookie"] = cookie
    phrase = HTTPStatus(status).phrase
    return Response(status, phrase, headers, payload)
