"""The control API on the stream's port (docs/protocol.md, "The control API").

    POST /api/estop                  latched emergency stop
    POST /api/reset                  release the latch (moves nothing)
    POST /api/actuators/<name>       {"command": "stop"|"move"|"on"|"off"}
                                     or, to a drive, {"command": {"linear": x, "angular": y}}
    POST /api/login                  token → HttpOnly, SameSite=Strict session cookie
    POST /api/logout
    GET  /api/session                {"operator": bool, "estop_latched": bool}

Commands need `Authorization: Bearer <token>` or the session cookie, and a
same-origin (or no) `Origin`: 401 and 403 otherwise, with a body saying why,
and answers to repeated bad tokens slow down (429 when too many wait).  The
dashboard sends the same commands over its WebSocket once logged in
(`ws_command`), each checked by `parse_ws_command` before anything uses it.
Every command ends in `Engine.operator`, the reflexes' own path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from anse_hw.errors import Refused
from anse_hw.motion import aim_of, twist_problem
from anse_hw.web.auth import SESSION_COOKIE, SESSION_SECONDS, Gate, Latch, session_from_cookie

if TYPE_CHECKING:
    from anse_hw.engine import Engine  # only its type: the daemon hands one over

log = logging.getLogger(__name__)

#: The commands that change the latch, and so wait for it to reach the disk.
LATCH_ACTIONS = ("estop", "reset")
#: The longest a latch write holds back the stream and the answer: a disk
#: that hangs must not freeze them (the answer then says "not on disk").
HOLD_LIMIT = 2.0

#: Longer actuator names and commands are not ours (and not worth echoing).
MAX_NAME = 64
WS_ACTIONS = ("estop", "reset", "command")
#: Distinct addresses a RefusalLog counts per interval (its memory bound).
MAX_COUNTED_ADDRESSES = 1024


class ControlApi:
    def __init__(self, engine: Callable[[], Engine], gate: Gate, latch: Latch) -> None:
        """`engine` gives the engine once it exists (the API is made first)."""
        self.engine = engine
        self.latched = lambda: engine().latched
        self.gate = gate
        self._writer = LatchWriter(latch, self.latched)
        self.refusals = RefusalLog()

    async def run(self, action: str, source: str, **target: Any) -> dict[str, Any]:
        """Every operator command, from HTTP, the dashboard and MQTT.  The
        pins are driven at once; an E-stop or a reset is answered, and shown
        on the stream, only once the latch is on disk (or the write failed,
        and the answer says the latch is held in memory only)."""
        if action not in LATCH_ACTIONS:
            return self.engine().operator(action, source, **target)
        result = self.engine().operator(action, source, hold=True)
        problem = await self.persist(source)
        if problem is None:
            return {**result, "durable": True}
        warning = (
            f"latch held in memory only: {problem}"
            if result["latched"]
            else f"reset not saved: {problem}"
        )
        log.error("E-stop %s", warning)
        return {**result, "durable": False, "warning": warning}

    async def persist(self, by: str) -> str | None:
        """The one way a latch the engine holds the stream for reaches the
        disk, whoever set it (an operator, the hardwired E-stop, a reflex's
        `command: estop`): write it, then let its events out, and the world
        model says whether it is on disk.  Returns the problem, if any."""
        durable = None
        try:
            durable, problem = await self._save(by)
        finally:
            self.engine().release(durable)
        return problem

    async def save_at_start(self) -> None:
        """Write the latch the daemon starts with, once it is up (a daemon
        that fails to start leaves the file as it was)."""
        durable, problem = await self._save("start")
        if problem:
            log.warning("E-stop state held in memory only: %s", problem)
        self.engine().set_durable(durable)

    async def _save(self, by: str) -> tuple[bool, str | None]:
        """(durable, problem): the latch as it is now, written by the one
        writer thread, waited for at most HOLD_LIMIT.  A write still going
        then counts as failed until it ends (and its end says otherwise)."""
        write = self._writer.submit(by)
        try:
            problem = await asyncio.wait_for(asyncio.shield(write), HOLD_LIMIT)
        except TimeoutError:
            return False, f"the state disk has not answered in {HOLD_LIMIT:g} s"
        finally:
            if not write.done():
                write.add_done_callback(self._late)
        return problem is None, problem

    def _late(self, write: asyncio.Future) -> None:
        if not write.cancelled():
            self.engine().set_durable(write.result() is None)

    # -- HTTP --------------------------------------------------------------------

    async def handle(self, connection: Any, request: Request, path: str) -> Response:
        peer = connection.remote_address[0] if connection.remote_address else "?"
        if path == "/api/session" and request.method == "GET":
            operator = self.gate.session_ok(_session(request))
            return reply(200, {"operator": operator, "estop_latched": self.latched()})
        if request.method != "POST":
            return reply(405, {"error": f"{request.method} is not allowed here; use POST"})
        verdict = await self.gate.check(
            peer,
            request.headers.get("Authorization"),
            request.headers.get("Cookie"),
            request.headers.get("Origin"),
            request.headers.get("Host"),
        )
        if not verdict.allowed:
            self.refusals.refused(peer, f"{request.method} {path[:80]}", verdict.reason)
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
                name = _name(path.removeprefix("/api/actuators/"), "the actuator in the path")
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
        """One message {"action": "estop"|"reset"|"command", "actuator", "command"}:
        the reply, ok or not, and the connection is kept either way."""
        if not operator:
            return {"ok": False, "status": 401, "error": "log in first (POST /api/login)"}
        try:
            command = parse_ws_command(message)
            result = await self.run(command.action, f"dashboard ({peer})", **command.target)
        except Refused as exc:
            return {"ok": False, "status": exc.status, "error": exc.reason}
        return {"ok": True, "result": result}


class LatchWriter:
    """One thread that writes the latch, one write after another, each with
    the engine's latch as it is when the write begins (so the last write is
    the newest state).  A thread of its own rather than an executor's: a
    disk that never answers must not hold up the process's exit, and
    executor threads are joined at exit."""

    def __init__(self, latch: Latch, latched: Callable[[], bool]) -> None:
        self.latch = latch
        self.latched = latched
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, by: str) -> asyncio.Future:
        """A future of the write's outcome: None, or the problem."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="latch-writer", daemon=True)
            self._thread.start()
        self._jobs.put((loop, future, by))
        return future

    def _run(self) -> None:
        while True:
            loop, future, by = self._jobs.get()
            problem = self.latch.save(self.latched(), by)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, problem)


def _settle(future: asyncio.Future, problem: str | None) -> None:
    if not future.done():
        future.set_result(problem)


@dataclass(frozen=True)
class WsCommand:
    action: str
    actuator: str | None = None
    command: str | dict | None = None

    @property
    def target(self) -> dict[str, Any]:
        """What `ControlApi.run` takes besides the action."""
        if self.action != "command":
            return {}
        return {"actuator": self.actuator, "command": self.command}


WS_EXAMPLE = '{"action": "command", "actuator": "movement", "command": "stop"}'


def parse_ws_command(message: str | bytes) -> WsCommand:
    """The schema of a dashboard's command, checked before anything uses it:
    a JSON object (no key twice), `action` one of WS_ACTIONS, and for
    "command" an `actuator` that is a short string and a `command` that is
    one too, or a drive's `{"linear", "angular"}` (anse_hw.motion); no other
    keys.  Anything else is Refused(400) saying what is wrong."""
    try:
        data = json.loads(message, object_pairs_hook=_unique_keys)
    except _RepeatedKey as exc:
        raise Refused(400, f"key {exc.key[:40]!r} is given twice") from None
    except (ValueError, RecursionError):  # also bytes that are not UTF-8; 4 KiB of '['
        raise Refused(400, f"send a JSON object, such as {WS_EXAMPLE}") from None
    if not isinstance(data, dict):
        raise Refused(400, f"send a JSON object, such as {WS_EXAMPLE}")
    action = data.get("action")
    if not isinstance(action, str) or action not in WS_ACTIONS:
        raise Refused(400, f"action must be one of {', '.join(WS_ACTIONS)}")
    allowed = {"action", "actuator", "command"} if action == "command" else {"action"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise Refused(400, f"{action} takes no key {extra[0][:40]!r}")
    if action != "command":
        return WsCommand(action)
    return WsCommand(
        action, _name(data.get("actuator"), "actuator"), _command_value(data.get("command"))
    )


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is ambiguous, so refused."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _RepeatedKey(key)
        data[key] = value
    return data


def _name(value: Any, what: str) -> str:
    """An actuator name or a command: a string of 1 to MAX_NAME characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise Refused(400, f"{what} must be a string of 1 to {MAX_NAME} characters")
    return value


def _command_value(value: Any) -> str | dict:
    """A command: a name ("stop"), a motor's {"move"|"reverse": {"speed": s}}
    or a drive's {"linear": x, "angular": y}, each number in range (whether
    the actuator is a motor or a drive, the engine says)."""
    if isinstance(value, dict):
        if {"linear", "angular"} & set(value):
            problem = twist_problem(value)
        else:
            aimed = aim_of(value)
            problem = aimed if isinstance(aimed, str) else None
        if problem:
            raise Refused(400, f"command {problem}")
        return value
    return _name(value, "command")


def printable(text: str) -> str:
    """`text` for a log line: a request path or an Origin may carry control
    characters (a terminal's escape sequences), shown here as \\xNN."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


class RefusalLog:
    """Refused requests, logged without flooding the log: the first refusal
    of an address in each INTERVAL is a line (at most MAX_LINES of them),
    the rest are counted and summed up in one line when the interval ends."""

    INTERVAL = 60.0
    MAX_LINES = 10

    def __init__(self) -> None:
        self._logged: set[str] = set()
        self._counted = 0
        self._addresses: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None

    def refused(self, peer: str, what: str, reason: str) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.INTERVAL, self.flush)
        if peer not in self._logged and len(self._logged) < self.MAX_LINES:
            self._logged.add(peer)
            log.warning(
                "refused %s from %s: %s (more refusals are counted for %g s)",
                printable(what),
                peer,
                printable(reason),
                self.INTERVAL,
            )
            return
        self._counted += 1
        if len(self._addresses) < MAX_COUNTED_ADDRESSES:
            self._addresses.add(peer)

    def flush(self) -> None:
        if self._counted:
            many = "+" if len(self._addresses) >= MAX_COUNTED_ADDRESSES else ""
            log.warning(
                "refused %d more requests from %d%s addresses in the last %g s",
                self._counted,
                len(self._addresses),
                many,
                self.INTERVAL,
            )
        self._logged.clear()
        self._addresses.clear()
        self._counted = 0
        self._flush = None


def _session(request: Request) -> str | None:
    return session_from_cookie(request.headers.get("Cookie"))


def _command(body: bytes) -> str | dict:
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise Refused(400, 'the body must be JSON: {"command": "stop"}') from None
    if not isinstance(data, dict) or "command" not in data:
        raise Refused(400, 'the body must be JSON: {"command": "stop"}')
    return _command_value(data["command"])


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
