"""The HTTP side of the one port: whatever arrives, never a 500 and never a
traceback; query parameters are validated before the upgrade."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import fast_sim_config

UPGRADE = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def raw_request(port: int, target: bytes, upgrade: bool = False) -> tuple[int, bytes]:
    """Send one request line as bytes; (status, body), or (0, b"") if the server
    closed the connection without an answer (its right for a malformed request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + (UPGRADE if upgrade else b"") + b"\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, b""
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def daemon(start_daemon):
    return start_daemon(fast_sim_config(0, interval=0.2))


@pytest.mark.parametrize(
    ("target", "upgrade", "status", "says"),
    [
        (b"/\x00", False, 404, b"not found"),
        (b"/app.js\x00.html", False, 404, b"not found"),
        (b"/" + b"a" * 5000, False, 404, b"not found"),
        (b"/../../etc/passwd", False, 404, b"not found"),
        (b"/?max_hz=nan", True, 400, b"max_hz must be one number"),
        (b"/?max_hz=inf", True, 400, b"max_hz must be one number"),
        (b"/?max_hz=0", True, 400, b"0.1 to 1000"),
        (b"/?max_hz=1&max_hz=2", True, 400, b"max_hz must be one number"),
        (b"/?maxhz=1", True, 400, b"unknown query parameter 'maxhz'"),
    ],
    ids=[
        "nul",
        "nul-in-name",
        "overlong",
        "traversal",
        "max_hz-nan",
        "max_hz-inf",
        "max_hz-zero",
        "max_hz-twice",
        "typo",
    ],
)
def test_bad_requests_get_a_clear_4xx(daemon, target, upgrade, status, says):
    got, body = raw_request(daemon.port, target, upgrade)
    assert got == status, body
    assert says in body
    assert "Traceback" not in daemon.log()


def test_the_dashboard_files_are_served(daemon):
    assert raw_request(daemon.port, b"/")[0] == 200
    assert raw_request(daemon.port, b"/app.js")[0] == 200
    assert raw_request(daemon.port, b"/healthz?anything=\x00")[0] in (200, 503)


targets = st.lists(
    st.sampled_from(
        [b"/", b"/healthz", b"?", b"&", b"=", b"max_hz", b"%00", b"%2e%2e/", b"..", b"\x00", b"nan"]
    )
    | st.binary(min_size=1, max_size=16).filter(lambda b: b" " not in b and b"\r" not in b),
    min_size=1,
    max_size=12,
).map(lambda parts: b"/" + b"".join(parts).replace(b"\n", b""))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(targets, st.booleans())
@example(b"//[", False)  # urlsplit raised on these (found by this test in CI)
@example(b"//", True)
def test_no_request_target_gets_a_500(daemon, target, upgrade):
    status, _ = raw_request(daemon.port, target, upgrade)
    assert status != 500 and status < 600, target
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.log()
