"""What the hostile web tests share: a robot whose reflex can be watched
stopping a motor (a TFmini on a pty, an L298N on the mock pin factory, the
daemon as a process), raw HTTP over a socket, and an attack kept running on a
thread while the test checks that the reflex still stops the motor."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from anse_hw import statefile
from anse_hw.drivers.protocols import tfmini_frame
from tests.conftest import hardware_config, http_get, pin
from tests.serialdev import PtyDevice


def state_of(tmp_path: Path, config_name: str = "robot.yaml") -> Path:
    """Where a daemon on fakes started from `tmp_path / config_name` keeps its
    state (the STATE_DIRECTORY conftest's daemon_env gives it), before it runs."""
    config = str(tmp_path / config_name)
    return statefile.robot_state_dir(str(tmp_path / "state"), None, config, on_fakes=True)


class Robot:
    """The daemon with a stop reflex (below 10 cm) and a resume (above 15 cm)."""

    def __init__(self, tmp_path: Path, start_daemon, watch, server_extra: str = "") -> None:
        self.device = PtyDevice(tmp_path / "ttyLIDAR")
        self.pins = tmp_path / "pins.json"
        text = hardware_config(0, self.device.path, self.pins, max_age=5)
        if server_extra:
            text = text.replace("port: 0}", f"port: 0, {server_extra}}}")
        self.daemon = start_daemon(text)
        self.port = self.daemon.port
        self.token = (self.daemon.state / "control-token").read_text().strip()
        self.stream = watch(self.daemon.url)
        self._cookie = ""

    def reading(self, cm: int) -> None:
        self.device.write(tfmini_frame(cm))

    def reflex_stops_the_motor(self) -> None:
        """Far: the motor runs (pin 17 at the configured speed); near: the
        reflex stops it (pin 17 at 0), as the stream also shows."""
        mark = len(self.stream.events)
        self.reading(80)
        self.stream.wait_state("MOVING", after=mark, timeout=30)
        mark = len(self.stream.events)
        self.reading(5)
        self.stream.wait_state("STOPPED", after=mark, timeout=30)
        assert pin(self.pins, "GPIO17") == 0.0

    def latched(self) -> bool:
        return json.loads(http_get(f"http://127.0.0.1:{self.port}/healthz")[1])["estop_latched"]

    def session_cookie(self) -> str:
        """A dashboard session, as POST /api/login with the token gives it
        (one per robot: tests that log in many times keep the same)."""
        if self._cookie:
            return self._cookie
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/login",
            data=b"",
            method="POST",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            self._cookie = response.headers["Set-Cookie"].split(";", 1)[0]
        return self._cookie

    def no_traceback(self) -> None:
        assert self.daemon.proc.poll() is None, "the daemon is still running"
        assert "Traceback" not in self.daemon.log()

    def close(self) -> None:
        self.device.close()


def exchange(
    port: int,
    data: bytes,
    source: str = "127.0.0.1",
    timeout: float = 20.0,
    half_close: bool = False,
) -> tuple[int, bytes]:
    """Send raw bytes (then end our half of the stream, if `half_close`) and
    read until the daemon closes: (status, body).  No answer at all is status
    0; an answer that never ends fails the test."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"the connection stayed open: {answer[:200]!r}") from None
    if not answer:
        return 0, b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def status_of(port: int, data: bytes) -> int:
    """Only the status of the answer to `data` (a handshake's 101 is followed
    by a stream that does not end)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                return 0
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def request(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A request head as bytes, headers in the order given (repeats kept)."""
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


@contextmanager
def attacking(attack: Callable[[], object]) -> Iterator[list[int]]:
    """Run `attack` over and over on a thread for the duration of the block;
    yields the count of rounds so far.  Any failure in it fails the test."""
    stop = threading.Event()
    errors: list[BaseException] = []
    rounds = [0]

    def run() -> None:
        while not stop.is_set():
            try:
                attack()
            except BaseException as exc:  # reported on the test's thread
                errors.append(exc)
                return
            rounds[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield rounds
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]
    assert rounds[0] > 0, "the attack ran"
