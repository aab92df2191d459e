"""The bad-token slow-down against the two ways around it that worked: many
guesses in parallel from one address, and guesses spread over more addresses
than the per-address table holds.  Through the daemon as a process (raw
sockets from real 127/8 source addresses), and the gate on values alone."""

from __future__ import annotations

import asyncio
import logging
import math
import selectors
import socket
import time

import pytest

from anse_hw.web.api import RefusalLog
from anse_hw.web.auth import (
    FREE_FAILURES,
    GLOBAL_DELAY,
    GLOBAL_FREE_FAILURES,
    MAX_PEERS,
    MAX_WAITING,
    Gate,
    session_from_cookie,
)
from tests.conftest import wait_for
from tests.hostile import Robot, exchange, request

#: The shortest turn a waiting guess takes (the first slowed one, 0.5 s).
SHORTEST_TURN = 0.5


@pytest.fixture
def robot(tmp_path, start_daemon, watch):
    robot = Robot(tmp_path, start_daemon, watch)
    yield robot
    robot.close()


class Volley:
    """Many requests sent at once, each on its own socket (from its own source
    address if given); the answers are read as they come."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.statuses: list[int] = []
        self.sent = 0
        self._answers: dict[socket.socket, bytes] = {}

    def send(self, port: int, data: bytes, source: str = "127.0.0.1") -> None:
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(data)
        sock.setblocking(False)
        self._answers[sock] = b""
        self.selector.register(sock, selectors.EVENT_READ)
        self.sent += 1

    def read(self, timeout: float = 0.05) -> None:
        """Take what has arrived; a socket whose status line is in is closed."""
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            self._answers[sock] += chunk
            if b"\r\n" in self._answers[sock] or not chunk:
                line = self._answers.pop(sock).partition(b"\r\n")[0]
                self.statuses.append(int(line.split(b" ")[1]) if line else 0)
                self.selector.unregister(sock)
                sock.close()

    @property
    def pending(self) -> int:
        return len(self._answers)

    def count(self, status: int) -> int:
        return self.statuses.count(status)

    def close(self) -> None:
        for sock in list(self._answers):
            self.selector.unregister(sock)
            sock.close()
        self._answers.clear()


def guess(robot: Robot, token: str = "wrong-guess-" + "x" * 20) -> bytes:
    return request(
        "POST",
        "/api/estop",
        [("Host", f"127.0.0.1:{robot.port}"), ("Authorization", f"Bearer {token}")],
    )


def refusal_lines(robot: Robot) -> list[str]:
    """The refusals logged, once the operator's E-STOP (logged after them) is."""
    wait_for(lambda: "E-STOP from" in robot.daemon.log(), what="the E-STOP logged")
    return [line for line in robot.daemon.log().splitlines() if "refused POST" in line]


def test_parallel_guesses_from_one_address_are_checked_in_turn(robot):
    volley = Volley()
    started = time.monotonic()
    try:
        for _ in range(200):
            volley.send(robot.port, guess(robot))
        # Every guess is either answered or waiting its turn.
        wait_for(
            lambda: volley.read() or volley.pending <= MAX_WAITING,
            30,
            "all but the waiting guesses answered",
        )
        elapsed = time.monotonic() - started
        # Checked: the free ones, and one per turn since (each turn >= 0.5 s).
        turns = math.ceil(elapsed / SHORTEST_TURN)
        assert volley.count(401) <= FREE_FAILURES + turns, volley.statuses
        assert volley.count(429) >= 200 - FREE_FAILURES - MAX_WAITING - turns
        assert set(volley.statuses) <= {401, 429}
        # While guesses still wait their turn, the reflex acts and the right
        # token from the operator's own address is answered at once.
        robot.reflex_stops_the_motor()
        assert exchange(robot.port, guess(robot, robot.token), source="127.0.0.2")[0] == 200
        volley.read()
        assert volley.pending, "the operator did not wait behind the guesses"
        assert robot.latched()
    finally:
        volley.close()
    lines = refusal_lines(robot)
    assert len(lines) == 1 and "from 127.0.0.1" in lines[0], lines
    robot.no_traceback()


def test_guesses_spread_over_many_addresses_are_checked_in_turn(robot):
    # The operator's address has shown the token: it stays fast under attack.
    assert exchange(robot.port, request("POST", "/api/login", guess_headers(robot)))[0] == 200
    volley = Volley()
    started = time.monotonic()
    sources = [f"127.0.{i // 250 + 1}.{i % 250 + 2}" for i in range(MAX_PEERS + 6)]
    try:
        for wave in range(0, len(sources), 100):
            for source in sources[wave : wave + 100]:
                volley.send(robot.port, guess(robot), source)
            wait_for(
                lambda: volley.read() or volley.pending <= MAX_WAITING,
                30,
                "all but the waiting guesses answered",
            )
        elapsed = time.monotonic() - started
        turns = math.ceil(elapsed / GLOBAL_DELAY)
        assert volley.count(401) <= GLOBAL_FREE_FAILURES + turns, volley.statuses
        assert volley.count(429) >= len(sources) - GLOBAL_FREE_FAILURES - MAX_WAITING - turns
        robot.reflex_stops_the_motor()
        assert exchange(robot.port, guess(robot, robot.token), source="127.0.0.1")[0] == 200
        volley.read()
        assert volley.pending, "the operator did not wait behind the guesses"
    finally:
        volley.close()
    assert len(refusal_lines(robot)) <= RefusalLog.MAX_LINES, "refusals do not flood the log"
    robot.no_traceback()


def guess_headers(robot: Robot) -> list[tuple[str, str]]:
    return [("Host", f"127.0.0.1:{robot.port}"), ("Authorization", f"Bearer {robot.token}")]


# -- the gate on values ---------------------------------------------------------

TOKEN = "t" * 32


def test_evicting_the_table_does_not_reset_a_guesser():
    async def run() -> None:
        gate = Gate(TOKEN)
        for _ in range(FREE_FAILURES):
            await gate.check("10.0.0.1", "Bearer x", None, None, None)
        assert gate.delay("10.0.0.1") > 0
        for i in range(MAX_PEERS + 10):  # each fails once, evicting the first
            gate._judge(f"10.1.{i // 256}.{i % 256}", "Bearer x")
        assert gate.delay("10.0.0.1") >= GLOBAL_DELAY, "the global rate still holds it"
        assert gate.delay("10.9.9.9") >= GLOBAL_DELAY, "and any address it moves to"

    asyncio.run(run())


def test_a_session_and_a_known_address_are_never_slowed():
    async def run() -> None:
        gate = Gate(TOKEN)
        session = gate.new_session()
        assert (await gate.check("10.0.0.2", f"Bearer {TOKEN}", None, None, None)).allowed
        for i in range(GLOBAL_FREE_FAILURES):
            gate._judge(f"10.1.0.{i}", "Bearer x")
        assert gate.delay("10.0.0.3") >= GLOBAL_DELAY, "a new address waits while under attack"
        assert gate.delay("10.0.0.2") == 0, "one that showed the token does not"
        cookie = f"anse_session={session}"
        assert session_from_cookie(cookie) == session
        verdict = await asyncio.wait_for(gate.check("10.0.0.3", None, cookie, None, None), 1)
        assert verdict.allowed, "an operator's dashboard never waits"

    asyncio.run(run())


def test_at_most_max_waiting_guesses_wait_the_rest_are_not_checked():
    async def run() -> None:
        gate = Gate(TOKEN)
        for _ in range(FREE_FAILURES):
            await gate.check("10.0.0.1", "Bearer x", None, None, None)
        tasks = [
            asyncio.create_task(gate.check("10.0.0.1", f"Bearer {TOKEN}", None, None, None))
            for _ in range(MAX_WAITING + 40)
        ]
        done, waiting = await asyncio.wait(tasks, timeout=0.2)
        assert len(waiting) == MAX_WAITING
        assert all(t.result().status == 429 for t in done), "refused without being checked"
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        assert gate._waiting == 0

    asyncio.run(run())


def test_refusals_are_logged_once_per_address_and_then_counted(caplog):
    async def run() -> None:
        refusals = RefusalLog()
        refusals.INTERVAL = 0.2
        for i in range(500):
            refusals.refused(f"10.0.{i % 300 // 256}.{i % 300 % 256}", "POST /api/estop", "no")
        await asyncio.sleep(0.5)

    with caplog.at_level(logging.WARNING, logger="anse_hw.web.api"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == RefusalLog.MAX_LINES + 1, lines
    assert lines[-1] == "refused 490 more requests from 300 addresses in the last 0.2 s"
