"""Operator control (docs/protocol.md, "The control API"): who may command,
and the E-stop latch on disk.

The decisions themselves are the engine's (`Engine.operator`, under the same
lock as the reflexes).  This module keeps what surrounds them: the latch file
that outlives the process, the control token and the dashboard sessions made
from it, the same-origin rule for commands, and the slow-down for bad tokens.
Nothing here writes a token to a log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from anse_hw import files, statefile
from anse_hw.errors import ConfigError

log = logging.getLogger(__name__)

LATCH_FILE = "estop.json"
TOKEN_FILE = "control-token"
SESSION_COOKIE = "anse_session"
SESSION_SECONDS = 12 * 3600
TOKEN_ENV = "ANSE_HW_CONTROL_TOKEN"
#: A token file is one line; anything near this size is not one.
TOKEN_FILE_LIMIT = 4096
MIN_TOKEN_BITS = 128
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
#: Tokens travel in a URL (?token=) and a header: URL-safe base64 or hex only
#: ('+' would arrive as a space, '/' and '=' need escaping).
TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")

#: Wrong credentials from one address answered at once; after that each one
#: waits its turn, 0.5 s doubling up to MAX_DELAY.
FREE_FAILURES = 3
MAX_DELAY = 5.0
#: Wrong credentials from all addresses together, within FAILURE_WINDOW, before
#: every guess from an address that has not shown the token waits its turn
#: too (GLOBAL_DELAY): spreading guesses over many addresses, or evicting the
#: per-address table with them, gains nothing.
GLOBAL_FREE_FAILURES = 30
FAILURE_WINDOW = 60.0
GLOBAL_DELAY = 1.0
#: Guesses waiting for their turn at once; more are refused (429) unchecked,
#: so parallel guesses gain nothing either.
MAX_WAITING = 16
#: A guess not checked within this long is refused (429) unchecked: an answer
#: before websockets' 10 s opening timeout ends the connection without one.
TURN_TIMEOUT = 8.0
BUSY = "too many wrong credentials lately: not checked; try again later"
#: Bounds on what the gate remembers, whatever the clients do.
MAX_SESSIONS = 256
MAX_PEERS = 1024
MAX_TRUSTED = 64


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
    """$ANSE_HW_CONTROL_TOKEN, else the token file, made (mode 0600) when it is
    missing or empty (an empty one is what a crash while making it by hand,
    or `touch`, leaves).  A token too weak to guard the motors, or a file that
    is not a readable regular file of text, is a ConfigError: one line, and
    the daemon does not start."""
    given = os.environ.get(TOKEN_ENV)
    if given is not None:
        return _checked(given.strip(), f"${TOKEN_ENV}")
    try:
        text = files.read_text(token_file, TOKEN_FILE_LIMIT).strip()
    except files.FileProblem as exc:
        if not _missing(token_file):
            raise ConfigError([f"control token: {exc}"]) from None
        return _make_token(token_file, "")
    if not text:
        return _make_token(token_file, ", replacing an empty file")
    return _checked(text, str(token_file))


def _missing(path: Path) -> bool:
    """Nothing at all is there (a dangling symlink is something)."""
    return files.path_problem(path) is None and not path.exists() and not path.is_symlink()


def _make_token(token_file: Path, note: str) -> str:
    token = secrets.token_urlsafe(24)
    try:
        statefile.write_bytes(token_file, f"{token}\n".encode(), mode=0o600)
    except OSError as exc:
        raise OSError(f"cannot create the control token {token_file}: {exc.strerror}") from None
    log.info("✓ Created a control token in %s (mode 0600%s)", token_file, note)
    return token


def token_problem(token: str) -> str | None:
    """Why `token` cannot guard the motors, if it cannot."""
    if not token:
        return "is empty"
    if not TOKEN_CHARS.fullmatch(token):
        return "may hold only letters, digits, '-' and '_' (it travels in a URL)"
    bits = len(token) * (4 if HEX_DIGITS.fullmatch(token) else 6)
    if bits < MIN_TOKEN_BITS:
        return f"is too short: {bits} bits, at least {MIN_TOKEN_BITS} are required"
    return None


def _checked(token: str, where: str) -> str:
    problem = token_problem(token)
    if problem:
        raise ConfigError([f"{where}: the control token {problem}; make one with {MAKE_TOKEN}"])
    return token


def operator_hint(url: str, token: str, token_file: Path, terminal: bool) -> str:
    """The URL that logs a dashboard in, as the "Operator:" line shows it.

    With the token only on a terminal: anywhere else stderr is a log (the
    journal, Docker, nohup, `2>file`), and a token never reaches a log.  A
    token from the environment is never shown: it was never ours to show."""
    from_env = os.environ.get(TOKEN_ENV) is not None
    if terminal and not from_env:
        return f"{url}?token={token}"
    where = f"${TOKEN_ENV}" if from_env else str(token_file)
    return f"{url}?token=<the token in {where}>"


@dataclass
class Verdict:
    """An authorisation decision: status 0 means allowed."""

    status: int
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 0


class Gate:
    """Bearer token, session cookies, the same-origin rule and the slow-down.

    The slow-down decides *before* a credential is compared: a guess that
    must wait is not checked until its turn, so answers that come back fast
    (a right guess among many parallel wrong ones) cannot be had early.  Turns
    are taken one at a time, `MAX_WAITING` at most wait, and the rest are
    refused unchecked.  A valid session cookie is never slowed (an operator's
    E-STOP from the dashboard must not wait behind an attacker's guesses; its
    192 random bits are not guessable at any speed), and neither is an address
    that showed the right token lately, unless its own guesses fail."""

    def __init__(self, token: str, allowed_origins: tuple[str, ...] = ()) -> None:
        self._token = token.encode()
        self._sessions: dict[str, float] = {}
        #: Wrong credentials per address, least recently failed first.
        self._failures: OrderedDict[str, int] = OrderedDict()
        #: When the last GLOBAL_FREE_FAILURES wrong credentials (any address) came.
        self._recent: deque[float] = deque(maxlen=GLOBAL_FREE_FAILURES)
        #: Addresses that showed the right token, until when.
        self._trusted: OrderedDict[str, float] = OrderedDict()
        self._turn = asyncio.Lock()
        self._waiting = 0
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
        """No Origin (a script), or the page's own http(s)://host, or one
        configured.  `null` (a sandboxed frame, a file: or data: page) and an
        empty Host are nobody's own origin."""
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:  # not even a URL ("http://[")
            return False
        return (
            parts.scheme in ("http", "https")
            and bool(parts.netloc)
            and parts.netloc == (host or "").lower()
        )

    async def check(
        self,
        peer: str,
        authorization: str | None,
        cookie: str | None,
        origin: str | None,
        host: str | None,
    ) -> Verdict:
        """May this request command?  Waits its turn first when the slow-down
        says so.  Comparing and counting a failure happen with no await in
        between, so parallel guesses see each other's failures."""
        if not self.origin_ok(origin, host):
            return Verdict(
                403, f"commands from {origin[:80]} are refused (not this dashboard's origin)"
            )
        session = session_from_cookie(cookie)
        if session and self.session_ok(session):
            return Verdict(0)
        if authorization is None and session is None:  # nothing guessed: nothing to slow
            return Verdict(401, "credentials required: Authorization: Bearer <token>")
        if self.delay(peer):
            if self._waiting >= MAX_WAITING:
                return Verdict(429, BUSY)
            self._waiting += 1
            try:
                async with asyncio.timeout(TURN_TIMEOUT), self._turn:
                    # Counted again at its turn: the guesses before it may have failed.
                    await asyncio.sleep(self.delay(peer))
            except TimeoutError:
                return Verdict(429, BUSY)
            finally:
                self._waiting -= 1
        return self._judge(peer, authorization)

    def delay(self, peer: str) -> float:
        """How long a credential from `peer` waits before it is compared."""
        now = time.monotonic()
        failures = self._failures.get(peer, 0)
        own = (
            0.0
            if failures < FREE_FAILURES
            else min(MAX_DELAY, 0.25 * 2 ** (failures - FREE_FAILURES + 1))
        )
        recent = self._recent
        busy = len(recent) == recent.maxlen and now - recent[0] < FAILURE_WINDOW
        trusted = self._trusted.get(peer, 0.0) > now
        return max(own, GLOBAL_DELAY if busy and not trusted else 0.0)

    def _judge(self, peer: str, authorization: str | None) -> Verdict:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() and self.token_ok(token.strip()):
            self._failures.pop(peer, None)
            self._trusted.pop(peer, None)
            self._trusted[peer] = time.monotonic() + SESSION_SECONDS
            if len(self._trusted) > MAX_TRUSTED:
                self._trusted.popitem(last=False)
            return Verdict(0)
        self._failures[peer] = self._failures.pop(peer, 0) + 1
        if len(self._failures) > MAX_PEERS:
            self._failures.popitem(last=False)
        self._recent.append(time.monotonic())
        return Verdict(401, "invalid credentials")


def session_from_cookie(cookie: str | None) -> str | None:
    """The session cookie's value; the first one if a client sent several."""
    for part in (cookie or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return value
    return None
