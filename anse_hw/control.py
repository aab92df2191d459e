"""Operator control (SPEC §13): who may command, and the E-stop latch on disk.

The decisions themselves are the engine's (`Engine.operator`, under the same
lock as the reflexes).  This module keeps what surrounds them: the latch file
that outlives the process, the control token and the dashboard sessions made
from it, the same-origin rule for commands, and the slow-down for bad tokens.
Nothing here writes a token to a log.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from anse_hw import statefile

log = logging.getLogger("anse_hw.control")

LATCH_FILE = "estop.json"
TOKEN_FILE = "control-token"
SESSION_COOKIE = "anse_session"
SESSION_SECONDS = 12 * 3600
#: Bad credentials from one address before answers slow down, and the cap.
FREE_FAILURES = 3
MAX_DELAY = 5.0
#: Bounds on what the gate remembers, whatever the clients do.
MAX_SESSIONS = 256
MAX_PEERS = 1024


class Latch:
    """One robot's E-stop latch on disk (`estop.json` in its state directory).

    Latched when in doubt: a file that is corrupt, unreadable or missing
    where the robot has run before means latched.  The robot's directory is
    the mark of "has run before": it is made at the first start, with a
    released latch in it, and never removed by the daemon.  So a write that
    fails can remove the old file (unlinking needs no free space) and a
    restart comes up latched."""

    def __init__(self, directory: Path, legacy: Path | None = None) -> None:
        """`legacy`: the shared state base of older versions, whose latched
        `estop.json` the first robot to start here adopts (None: never, as for
        runs on fakes)."""
        self.directory = directory
        self.path = directory / LATCH_FILE
        self.legacy = legacy / LATCH_FILE if legacy else None

    def load(self) -> bool:
        """Whether the E-stop was latched when this robot last ran."""
        if self._first_start():
            return self._start_here()
        try:
            data = statefile.read_json(self.path)
        except statefile.StateFileError as exc:
            log.error(
                "E-stop state unknown (%s): starting LATCHED; POST /api/reset to release", exc
            )
            return True
        if not isinstance(data, dict) or not isinstance(data.get("latched"), bool):
            log.error("E-stop state in %s is not ours: starting LATCHED", self.path)
            return True
        if data["latched"]:
            log.warning(
                "E-stop is LATCHED (since %s); POST /api/reset to release", data.get("since")
            )
        return data["latched"]

    def save(self, latched: bool, by: str) -> str | None:
        """Write the latch atomically (fsync'd); None when it is on disk, else
        one line saying what failed and what a restart will find."""
        try:
            statefile.write_json(
                self.path,
                {
                    "latched": latched,
                    "by": by,
                    "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )
        except OSError as exc:
            problem = f"could not write {self.path} ({exc.strerror})"
        else:
            return None
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            return f"{problem}, nor remove the old one ({exc.strerror}): a restart reads that"
        return f"{problem}; the old one is removed, so a restart comes up latched"

    def _first_start(self) -> bool:
        try:
            self.directory.stat()
        except FileNotFoundError:
            return True
        except OSError:  # unreadable: not a first start, and the read says why
            pass
        return False

    def _start_here(self) -> bool:
        """The robot's first start: its directory, with the latch it starts
        with (a latched legacy one if there is one, else released)."""
        latched = self._legacy_latched()
        problem = self.save(latched, "adopted" if latched else "first start")
        if problem:
            log.warning("E-stop state: %s", problem)
        elif latched:
            log.warning("E-stop LATCHED: adopted from %s (state is per robot now)", self.legacy)
            try:
                self.legacy.unlink(missing_ok=True)  # adopted once, by one robot
            except OSError as exc:
                log.warning("could not remove %s (%s)", self.legacy, exc.strerror)
        return latched

    def _legacy_latched(self) -> bool:
        """A legacy latch file says latched, or cannot be read (the old rule:
        when in doubt, latched)."""
        if self.legacy is None or not os.path.lexists(self.legacy):
            return False
        try:
            data = statefile.read_json(self.legacy)
        except statefile.StateFileError:
            return True
        return not (isinstance(data, dict) and data.get("latched") is False)


def load_token(token_file: Path) -> str:
    """$ANSE_HW_CONTROL_TOKEN, else the token file, created (mode 0600) when missing."""
    given = os.environ.get("ANSE_HW_CONTROL_TOKEN")
    if given:
        return given.strip()
    try:
        text = token_file.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OSError(f"cannot read the control token {token_file}: {exc.strerror}") from None
    token = secrets.token_urlsafe(24)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    log.info("✓ Created a control token in %s (mode 0600)", token_file)
    return token


@dataclass
class Verdict:
    """An authorisation decision: status 0 means allowed."""

    status: int
    reason: str = ""
    delay: float = 0.0  # seconds to wait before answering (bad-token slow-down)

    @property
    def allowed(self) -> bool:
        return self.status == 0


class Gate:
    """Bearer token, session cookies, the same-origin rule and the slow-down."""

    def __init__(self, token: str, allowed_origins: tuple[str, ...] = ()) -> None:
        self._token = token.encode()
        self._sessions: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}

    def token_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._token)

    def new_session(self) -> str:
        now = time.monotonic()
        self._sessions = {s: t for s, t in self._sessions.items() if t > now}
        while len(self._sessions) >= MAX_SESSIONS:  # the oldest goes first
            del self._sessions[next(iter(self._sessions))]
        session = secrets.token_urlsafe(24)
        self._sessions[session] = now + SESSION_SECONDS
        return session

    def session_ok(self, session: str | None) -> bool:
        expires = self._sessions.get(session or "")
        return expires is not None and expires > time.monotonic()

    def origin_ok(self, origin: str | None, host: str | None) -> bool:
        """No Origin (a script) or the page's own host, or one configured."""
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        try:
            return urlsplit(origin).netloc == (host or "").lower()
        except ValueError:  # not even a URL ("http://[")
            return False

    def check(
        self,
        peer: str,
        authorization: str | None,
        cookie: str | None,
        origin: str | None,
        host: str | None,
    ) -> Verdict:
        if not self.origin_ok(origin, host):
            return Verdict(
                403, f"commands from {origin[:80]} are refused (not this dashboard's origin)"
            )
        session = session_from_cookie(cookie)
        if session and self.session_ok(session):
            return Verdict(0)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and token and self.token_ok(token.strip()):
            self._failures.pop(peer, None)
            return Verdict(0)
        if len(self._failures) >= MAX_PEERS and peer not in self._failures:
            self._failures.clear()
        failures = self._failures[peer] = self._failures.get(peer, 0) + 1
        delay = (
            0.0
            if failures <= FREE_FAILURES
            else min(MAX_DELAY, 0.25 * 2 ** (failures - FREE_FAILURES))
        )
        if not authorization and not session:
            return Verdict(401, "credentials required: Authorization: Bearer <token>", delay)
        return Verdict(401, "invalid credentials", delay)


def session_from_cookie(cookie: str | None) -> str | None:
    for part in (cookie or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return value
    return None
