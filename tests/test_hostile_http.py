"""Hostile requests on the one port, through the daemon as a process: repeated
security headers, malformed HTTP, `Origin: null` and an empty Host, and
WebSocket commands of every shape.  Each gets a one-line 4xx (or a refusal
on the WebSocket, which stays open), never a 500, a close 1011, silence or a
traceback, and the reflex keeps stopping the motor while the attack runs."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from anse_hw.errors import Refused
from anse_hw.web.api import MAX_NAME, WsCommand, parse_ws_command
from anse_hw.web.auth import Gate
from anse_hw.web.http import SINGLE_HEADERS
from anse_hw.web.httpbody import MAX_BODY, Complete, HeadReader, Refusal
from tests.conftest import stalled_client, wait_for
from tests.hostile import Robot, attacking, exchange, request, status_of


def against_the_daemon(examples: int) -> settings:
    """Examples that talk to one daemon (a fixture per test, not per example)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


UPGRADE = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]


@pytest.fixture
def robot(tmp_path, start_daemon, watch):
    robot = Robot(tmp_path, start_daemon, watch)
    yield robot
    robot.close()


# -- repeated security headers ------------------------------------------------

#: (method, path, extra headers): the control API, a page, and the handshake.
TARGETS = [
    ("POST", "/api/estop", []),
    ("GET", "/api/session", []),
    ("GET", "/healthz", []),
    ("GET", "/", UPGRADE),
]


def repeated(robot: Robot, name: str, first: str, second: str, target: int) -> list:
    """Headers with `name` twice, and everything else an operator's request
    would carry (the right token), so only the repeat can refuse it."""
    host = f"127.0.0.1:{robot.port}"
    base = {
        "Host": host,
        "Authorization": f"Bearer {robot.token}",
        "Origin": f"http://{host}",
        "Cookie": "a=b",
    }
    headers = [(k, v) for k, v in base.items() if k.lower() != name.lower()]
    return [*headers, (name, first), (name, second), *TARGETS[target][2]]


header_names = st.sampled_from(SINGLE_HEADERS).flatmap(
    lambda n: st.sampled_from([n, n.lower(), n.upper()])
)
header_values = st.sampled_from(["", "null", "x", "websocket", "Bearer x", "anse_session=x"]) | (
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
)


@against_the_daemon(150)
@given(header_names, header_values, header_values, st.integers(0, len(TARGETS) - 1))
@example("Cookie", "a=1", "b=2", 3)  # was a close 1011 and a traceback
@example("Authorization", "Bearer wrong", "Bearer {token}", 0)  # the right one second
def test_a_repeated_security_header_is_a_400(robot, name, first, second, target):
    first, second = (v.replace("{token}", robot.token) for v in (first, second))
    method, path, _ = TARGETS[target]
    status, body = exchange(
        robot.port, request(method, path, repeated(robot, name, first, second, target))
    )
    canonical = next(n for n in SINGLE_HEADERS if n.lower() == name.lower())
    assert (status, body) == (400, f"{canonical} is given more than once\n".encode())
    assert not robot.latched()
    robot.no_traceback()


def test_the_reflex_stops_the_motor_while_repeated_headers_pour_in(robot):
    attack = request("POST", "/api/estop", repeated(robot, "Origin", "null", "x", 0))
    with attacking(lambda: exchange(robot.port, attack)):
        robot.reflex_stops_the_motor()
    assert not robot.latched()
    robot.no_traceback()


def test_control_characters_in_a_refused_request_never_reach_the_log(robot):
    path = "/api/\x1b]0;pwned\x07\x1b[2J"
    data = request("POST", path, [("Host", "x"), ("Origin", "http://\x9b")])
    assert exchange(robot.port, data)[0] == 403
    log = wait_for(lambda: "refused POST" in robot.daemon.log() and robot.daemon.log())
    assert "refused POST /api/\\x1b]0;pwned\\x07\\x1b[2J from" in log, log
    assert "commands from http://\\x9b are refused" in log, log
    assert not any(c in log for c in "\x1b\x07\x9b")
    robot.no_traceback()


# -- malformed HTTP -------------------------------------------------------------

MALFORMED = {
    "length-plus": (b"Content-Length: +18\r\n", b'{"command":"stop"}', 400, b"digits only"),
    "length-negative": (b"Content-Length: -1\r\n", b"", 400, b"digits only"),
    "length-hex": (b"Content-Length: 0x10\r\n", b"", 400, b"digits only"),
    "length-empty": (b"Content-Length: \r\n", b"", 400, b"digits only"),
    "length-huge": (b"Content-Length: " + b"9" * 40 + b"\r\n", b"", 413, b"larger than"),
    "length-over-limit": (f"Content-Length: {MAX_BODY + 1}\r\n".encode(), b"", 413, b"larger"),
    "length-twice": (b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}", 400, b"more than once"),
    "length-space-before-colon": (b"Content-Length : 2\r\n", b"{}", 400, b"header name"),
    "chunked": (b"Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n", 400, b"transfer"),
    "chunked-and-length": (
        b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
        b"{}",
        400,
        b"transfer",
    ),
    "obs-fold": (b"X-Note: a\r\n folded\r\n", b"", 400, b"header line"),
    "obs-fold-origin": (b"Origin: http://x\r\n\tnull\r\n", b"", 400, b"header line"),
    "body-without-length": (b"", b'{"command": "move"}', 400, b"needs Content-Length"),
    "more-than-announced": (b"Content-Length: 2\r\n", b"{}junk", 400, b"more bytes"),
    "pipelined": (b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, b"Content-Length"),
    "header-without-colon": (b"X-Note\r\n", b"", 400, b"header line"),
    "nul-in-value": (b"X-Note: a\x00b\r\n", b"", 400, b"header value"),
    "long-line": (b"X-Note: " + b"a" * 9000 + b"\r\n", b"", 431, b"8192"),
    "head-over-64k": (
        b"".join(b"X-%d: %s\r\n" % (i, b"a" * 700) for i in range(100)),
        b"",
        431,
        b"64 KiB",
    ),
}


def malformed(robot: Robot, case: str) -> bytes:
    """POST /api/estop with the right token and one thing wrong."""
    extra, body, _, _ = MALFORMED[case]
    head = (
        f"POST /api/estop HTTP/1.1\r\nHost: 127.0.0.1:{robot.port}\r\n"
        f"Authorization: Bearer {robot.token}\r\n"
    ).encode()
    return head + extra + b"\r\n" + body


WHOLE_REQUESTS = {
    "bare-lf": (b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, b"CRLF"),
    "http-2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, b"protocol"),
    "no-version": (b"GET /\r\n\r\n", 400, b"request line"),
    "non-ascii-path": (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, b"ascii"),
    "empty-request-line": (b"\r\n\r\n", 400, b"request line"),
    "frames-before-the-101": (
        request("GET", "/", [("Host", "x"), *UPGRADE]) + b"\x81\x82abcd\x00\x00",
        400,
        b"Content-Length",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_http_is_answered_and_closed(robot, case):
    _, _, status, says = MALFORMED[case]
    got, body = exchange(robot.port, malformed(robot, case))
    assert got == status and says in body and body.count(b"\n") == 1, (got, body)
    assert not robot.latched(), "nothing malformed reached the control API"
    robot.no_traceback()


@pytest.mark.parametrize("case", WHOLE_REQUESTS)
def test_malformed_requests_are_answered_and_closed(robot, case):
    data, status, says = WHOLE_REQUESTS[case]
    got, body = exchange(robot.port, data)
    assert got == status and says in body and body.count(b"\n") == 1, (got, body)
    robot.no_traceback()


@pytest.mark.parametrize(
    ("case", "status", "says"),
    [
        ("whole", 200, b'"latched": true'),
        ("head-cut", 400, b"ended before"),
        ("body-cut", 400, b"ended before"),
    ],
)
def test_a_client_that_half_closes_gets_its_answer(robot, case, status, says):
    """`printf ... | nc -N` ends its half of the stream after the request:
    websockets gave up on such a connection without an answer."""
    data = request(
        "POST",
        "/api/estop",
        [("Host", "x"), ("Authorization", f"Bearer {robot.token}"), ("Content-Length", "2")],
        b"{}",
    )
    cut = {"whole": len(data), "head-cut": 30, "body-cut": len(data) - 1}[case]
    got, body = exchange(robot.port, data[:cut], half_close=True)
    assert (got, says in body) == (status, True), body
    assert robot.latched() is (case == "whole")
    robot.no_traceback()


def test_the_reflex_stops_the_motor_while_malformed_requests_pour_in(robot):
    attacks = [malformed(robot, case) for case in MALFORMED]
    attacks += [data for data, _, _ in WHOLE_REQUESTS.values()]

    def attack() -> None:
        for data in attacks:
            assert exchange(robot.port, data)[0] in (400, 413, 431)

    with attacking(attack):
        robot.reflex_stops_the_motor()
    assert not robot.latched()
    robot.no_traceback()


#: Header lines of every kind, well-formed or not (no Content-Length: a valid
#: one would rightly wait for its body).
header_lines = st.one_of(
    st.sampled_from(
        [
            b"Host: x",
            b"Origin: null",
            b"X: a\r\n b",
            b"X",
            b": x",
            b"X : y",
            b"Transfer-Encoding: x",
        ]
    ),
    st.binary(max_size=40).filter(lambda b: b"content-length" not in b.lower()),
)


@against_the_daemon(200)
@given(st.lists(header_lines, max_size=6), st.binary(max_size=20))
def test_any_head_that_ends_gets_an_answer(robot, lines, tail):
    data = b"GET /api/session HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines)
    status, _ = exchange(robot.port, data + b"\r\n" + tail)
    assert 200 <= status < 500, data
    robot.no_traceback()


# -- the head reader on values alone -------------------------------------------


def feed_in_pieces(data: bytes, cuts: list[int]) -> Refusal | Complete | None:
    """What a connection makes of `data` arriving in reads cut at `cuts`."""
    reader = HeadReader()
    start = 0
    for point in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        if point > start:
            outcome = reader.feed(data[start:point])
            start = point
            if outcome is not None:
                return outcome
    return None


heads = st.lists(
    st.sampled_from(
        [
            b"GET / HTTP/1.1\r\n",
            b"Host: x\r\n",
            b"Content-Length: 3\r\n",
            b"Content-Length: +3\r\n",
            b"X: a\r\n",
            b" folded\r\n",
            b"X: b\n",
            b"Transfer-Encoding: chunked\r\n",
            b"\r\n",
            b"abc",
        ]
    )
    | st.binary(max_size=12),
    min_size=1,
    max_size=10,
).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(heads, st.lists(st.integers(min_value=0), max_size=6))
def test_a_head_reads_the_same_however_it_is_split(data, cuts):
    whole = HeadReader().feed(data)
    pieces = feed_in_pieces(data, cuts)
    if pieces != whole:
        # The one difference reads make: bytes after a complete request, in
        # a later read, are not seen before it is handed on (and are dropped).
        assert isinstance(pieces, Complete) and isinstance(whole, Refusal), (pieces, whole)
        assert whole.status == 400 and "bytes arrived" in whole.reason
    if isinstance(whole, Complete):  # websockets gets no length to refuse
        assert b"content-length" not in whole.head.lower()


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=8))
def test_a_head_that_ends_is_never_left_waiting_without_a_length(lines):
    data = b"GET / HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    outcome = HeadReader().feed(data)
    announced = any(line.lower().startswith(b"content-length:") for line in lines)
    assert outcome is not None or announced


# -- Origin: null, an empty Host ----------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host"),
    [("null", ""), ("null", "{host}"), ("http://", ""), ("file://", ""), ("https://x", "")],
)
def test_origin_null_or_an_empty_host_never_commands(robot, origin, host):
    cookie = robot.session_cookie()
    host = host.format(host=f"127.0.0.1:{robot.port}")
    for credentials in (("Cookie", cookie), ("Authorization", f"Bearer {robot.token}")):
        headers = [("Host", host), ("Origin", origin), credentials]
        status, body = exchange(robot.port, request("POST", "/api/estop", headers))
        assert status == 403 and b"not this dashboard's origin" in body, (credentials, body)
    assert not robot.latched()
    robot.no_traceback()


def test_a_websocket_from_origin_null_cannot_command(robot):
    cookie = robot.session_cookie()
    with connect(robot.daemon.url, origin="null", additional_headers={"Cookie": cookie}) as ws:
        ws.recv()  # the snapshot
        ws.send(json.dumps({"action": "estop"}))
        assert reply(ws)["status"] == 401
    assert not robot.latched()


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (None, None, True),
        ("http://robot:8001", "robot:8001", True),
        ("HTTP://Robot:8001/", "robot:8001", True),
        ("null", "", False),
        ("null", None, False),
        ("http://", "", False),
        ("ws://robot:8001", "robot:8001", False),
        ("http://robot:8001", "robot:8002", False),
        ("http://[", "robot", False),
        ("", "", False),
    ],
)
def test_the_same_origin_rule_on_values(origin, host, same):
    assert Gate("t" * 32).origin_ok(origin, host) is same


# -- WebSocket commands ---------------------------------------------------------


def reply(ws) -> dict:
    """The next reply to this client's own command (events are skipped)."""
    while True:
        event = json.loads(ws.recv(timeout=20))
        if event["type"] == "reply":
            return event["data"]


BAD_COMMANDS = [
    '{"action": "command", "actuator": [1], "command": "stop"}',  # was a TypeError, 1011
    '{"action": "command", "actuator": {"a": 1}, "command": "stop"}',
    '{"action": "command", "actuator": "movement", "command": [1]}',
    '{"action": "command", "actuator": "movement"}',
    '{"action": "command", "actuator": "' + "m" * (MAX_NAME + 1) + '", "command": "stop"}',
    '{"action": ["estop"]}',
    '{"action": null}',
    '{"action": "estop", "actuator": "movement"}',
    '{"action": "reset", "action": "estop"}',
    '{"action": "estop", "extra": 1}',
    "[1]",
    '"estop"',
    "1e999",
    "[" * 4000,
    "{",
    b"\xff\xfe",
    "",
]


def test_websocket_commands_are_checked_and_the_connection_kept(robot):
    cookie = robot.session_cookie()
    origin = f"http://127.0.0.1:{robot.port}"

    def attack() -> None:
        with connect(robot.daemon.url, origin=origin, additional_headers={"Cookie": cookie}) as ws:
            ws.recv()  # the snapshot
            for message in BAD_COMMANDS:  # all on one connection: it is kept
                ws.send(message)
                answer = reply(ws)
                assert answer["ok"] is False and answer["status"] == 400, (message, answer)
                assert len(answer["error"]) < 200 and "\n" not in answer["error"]

    with attacking(attack):
        robot.reflex_stops_the_motor()
    assert not robot.latched()
    with connect(robot.daemon.url, origin=origin, additional_headers={"Cookie": cookie}) as ws:
        ws.recv()
        ws.send(BAD_COMMANDS[0])
        assert reply(ws)["status"] == 400
        ws.send(json.dumps({"action": "estop"}))  # the same connection still commands
        assert reply(ws)["ok"] is True
    assert robot.latched()
    robot.no_traceback()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
names = st.sampled_from(["movement", "nope", "stop", "move", "m" * (MAX_NAME + 1)]) | json_values
commands = st.fixed_dictionaries(
    {"action": st.sampled_from(["command", "command", "estop", "reset", "ESTOP"]) | json_values},
    optional={"actuator": names, "command": names, "other": json_values},
)


@against_the_daemon(150)
@given(commands.filter(lambda c: c.get("action") not in ("estop", "reset")))
@example({"action": "command", "actuator": {"a": 1}, "command": "stop"})
def test_any_websocket_command_gets_a_reply_and_the_connection_stays(robot, command):
    with connect(
        robot.daemon.url,
        origin=f"http://127.0.0.1:{robot.port}",
        additional_headers={"Cookie": robot.session_cookie()},
    ) as ws:
        ws.recv()
        ws.send(json.dumps(command))
        answer = reply(ws)
        assert answer["ok"] or 400 <= answer["status"] < 500, answer
        ws.send('{"action": "command", "actuator": "movement", "command": "stop"}')
        assert reply(ws)["ok"] is True, "the connection still commands"
    robot.no_traceback()


@settings(max_examples=1500, deadline=None)
@given(commands.map(json.dumps) | st.text(max_size=50) | st.binary(max_size=50))
@example('{"action": "command", "actuator": "movement", "command": "stop"}')
def test_the_command_schema_on_values(message):
    try:
        command = parse_ws_command(message)
    except Refused as exc:
        assert exc.status == 400 and "\n" not in exc.reason and len(exc.reason) < 200
        return
    assert isinstance(command, WsCommand) and command.action in ("estop", "reset", "command")
    if command.action == "command":
        for value in (command.actuator, command.command):
            assert isinstance(value, str) and 0 < len(value) <= MAX_NAME
    else:
        assert command.actuator is None and command.command is None


# -- clients that do not read -------------------------------------------------

STALL_LIMIT = 5  # server.ping_interval below: the seconds a client may read nothing


class Stalled:
    """A viewer that completes the handshake, never reads again, and keeps
    sending (masked text frames, as a client must) until it is dropped."""

    def __init__(self, port: int) -> None:
        self.sock = stalled_client(port)
        self.sock.setblocking(False)
        self.dropped = False

    def send(self) -> None:
        if self.dropped:
            return
        try:
            self.sock.send(Frame(Opcode.TEXT, b'{"action": "estop"}').serialize(mask=True))
        except BlockingIOError:
            pass  # its own send buffer is full too: the daemon stopped reading it
        except OSError:
            self.dropped = True


def test_clients_that_never_read_are_dropped_even_while_they_send(tmp_path, start_daemon, watch):
    robot = Robot(tmp_path, start_daemon, watch, f"max_clients: 5, ping_interval: {STALL_LIMIT}")
    try:
        stalled = [Stalled(robot.port) for _ in range(4)]  # with the watcher: 5 of 5
        full = request("GET", "/", [("Host", "x"), *UPGRADE])
        assert status_of(robot.port, full) == 503, "every slot is taken"

        def attack() -> None:
            """Readings between the thresholds fill the stalled clients'
            buffers; they keep sending."""
            robot.reading(12)
            for client in stalled:
                client.send()
            time.sleep(0.01)  # a sensor's pace, not a synchronisation

        def drops() -> int:
            return robot.daemon.log().count(f"read nothing for {STALL_LIMIT} s")

        with attacking(attack):
            robot.reflex_stops_the_motor()
            # All four said (they go within a few ms of each other: a free
            # slot alone was seen with three of them logged).
            wait_for(lambda: drops() >= 4, 120, "the four stalled clients dropped")
            assert status_of(robot.port, full) == 101, "a free slot"
        assert drops() == 4, robot.daemon.log()
        assert robot.stream.closed.is_set() is False, "the client that reads stays"
        robot.no_traceback()
    finally:
        for client in stalled:
            client.sock.close()
        robot.close()
