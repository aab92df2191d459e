"""Operator control (docs/protocol.md, "The control API") through the daemon
as a process: the latched
E-stop on the mock pin factory, manual commands with a heartbeat, and who may
command (bearer token, session cookie, same origin)."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
import urllib.error
import urllib.request

import pytest

from anse_hw.drivers.protocols import tfmini_frame
from tests.conftest import hardware_config, http_get, pin, wait_for
from tests.serialdev import PtyDevice


def post(
    port: int,
    path: str,
    token: str | None = None,
    body: dict | None = None,
    headers: dict | None = None,
) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else b"",
        method="POST",
        headers={**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def health(port: int) -> dict:
    return json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])


@pytest.fixture
def robot(tmp_path, start_daemon, watch):
    """A TFmini on a pty and an L298N motor on the mock pin factory, with a
    stop reflex and optionally the automatic resume."""
    devices = []

    class Robot:
        def __init__(self, resume: bool = True, heartbeat: float | None = None) -> None:
            self.device = PtyDevice(tmp_path / "ttyLIDAR")
            devices.append(self.device)
            self.pins = tmp_path / "pins.json"
            text = hardware_config(0, self.device.path, self.pins, max_age=5)
            if not resume:
                text = "\n".join(line for line in text.splitlines() if "clear_to_move" not in line)
            if heartbeat is not None:
                text = text.replace("port: 0}", f"port: 0, heartbeat: {heartbeat}}}")
            # Each start writes a new config file: the robot_id keeps it one robot.
            self.text = "robot_id: testbot\n" + text
            self.start()

        def start(self) -> None:
            self.daemon = start_daemon(self.text)
            self.port = self.daemon.port
            self.token = (self.daemon.state / "control-token").read_text().strip()
            self.stream = watch(self.daemon.url)

        def far(self, count: int = 1) -> None:
            """`count` far readings, written and then seen on the stream (the
            count before is taken before writing: a quick daemon may have
            streamed them before the test looks)."""
            seen = len(self.stream.of_type("sensor"))
            for _ in range(count):
                self.device.write(tfmini_frame(80))
            wait_for(
                lambda: len(self.stream.of_type("sensor")) >= seen + count,
                what=f"{count} readings",
            )

        def moving(self) -> None:
            mark = len(self.stream.events)
            self.far()
            self.stream.wait_state("MOVING", after=mark)
            assert pin(self.pins, "GPIO17") == 0.6

        def post(self, path: str, token: str | None = "", **kwargs) -> tuple[int, dict]:
            return post(self.port, path, self.token if token == "" else token, **kwargs)

    yield Robot
    for device in devices:
        device.close()


def reflex_events(stream, name: str) -> list[dict]:
    return [e["data"] for e in stream.of_type("reflex") if e["data"]["reflex_name"] == name]


def test_estop_stops_at_once_and_far_readings_wait_for_reset(robot):
    r = robot()
    r.moving()
    status, body = r.post("/api/estop")
    assert status == 200 and body["latched"] is True
    assert pin(r.pins, "GPIO17") == 0.0, "the pins are at 0 when the request is answered"
    wait_for(lambda: reflex_events(r.stream, "operator_estop"), what="the operator_estop event")
    estop = reflex_events(r.stream, "operator_estop")[0]
    assert estop["triggered"] is True and "api" in estop["condition"]
    assert health(r.port)["estop_latched"] is True

    r.far(5)
    assert r.stream.actuator_states()[-1] == "STOPPED" and pin(r.pins, "GPIO17") == 0.0

    mark = len(r.stream.events)
    status, body = r.post("/api/reset")
    assert status == 200 and body["latched"] is False
    wait_for(
        lambda: any(not e["triggered"] for e in reflex_events(r.stream, "operator_estop")),
        what="the reset event",
    )
    assert "MOVING" not in [
        e["data"]["state"] for e in r.stream.events[mark:] if e["type"] == "actuator"
    ], "a reset moves nothing by itself"
    assert pin(r.pins, "GPIO17") == 0.0
    r.moving()  # the next clear reading does


def test_the_latch_survives_a_restart(robot):
    r = robot()
    r.moving()
    assert r.post("/api/estop")[0] == 200
    assert r.daemon.signal(signal.SIGTERM) == 0
    r.start()
    assert "E-STOP LATCHED from the last run" in r.daemon.log()
    snapshot = r.stream.events[0]["data"]
    assert snapshot["estop_latched"] is True
    r.far(5)
    assert r.stream.actuator_states() == [] and pin(r.pins, "GPIO17") == 0.0
    assert r.post("/api/reset")[0] == 200
    r.moving()


def test_a_manual_move_lasts_only_while_heartbeats_arrive(robot):
    hold = 2.0  # ten times what a heartbeat takes here on a busy machine
    r = robot(resume=False, heartbeat=hold)
    r.far()
    assert r.post("/api/actuators/movement", body={"command": "move"}) == (
        200,
        {"actuator": "movement", "state": "MOVING"},
    )
    moved = time.monotonic()
    assert pin(r.pins, "GPIO17") == 0.6
    # Heartbeats, each a tenth of the hold after the last, until the move has
    # outlasted its first hold by half: each renewed it (the first would have
    # lapsed), and far readings keep the sensor fresh meanwhile.
    while time.monotonic() - moved < 1.5 * hold:
        r.far()
        beat = r.post("/api/actuators/movement", body={"command": "move"})
        assert beat == (200, {"actuator": "movement", "state": "MOVING", "held_for_s": hold})
        time.sleep(hold / 10)  # the pace of the heartbeats, not a wait for anything
    assert r.stream.actuator_states() == ["MOVING"]
    r.stream.wait_state("STOPPED", timeout=hold + 20)  # heartbeats stop: back to safe
    lapsed = [e for e in reflex_events(r.stream, "operator_command") if not e["triggered"]]
    assert lapsed and "no heartbeat" in lapsed[0]["condition"]
    assert pin(r.pins, "GPIO17") == 0.0


def test_a_stop_reflex_beats_a_manual_move(robot):
    r = robot(resume=False)
    r.far()
    assert r.post("/api/actuators/movement", body={"command": "move"})[0] == 200
    mark = len(r.stream.events)
    r.device.write(tfmini_frame(5))
    r.stream.wait_state("STOPPED", after=mark)
    assert reflex_events(r.stream, "proximity_safeguard")
    status, body = r.post("/api/actuators/movement", body={"command": "move"})
    assert status == 409 and "guarded" in body["error"]
    assert pin(r.pins, "GPIO17") == 0.0


def test_no_credentials_wrong_token_or_foreign_origin_command_nothing(robot):
    r = robot(resume=False)
    r.far()
    attempts = [
        ("/api/actuators/movement", None, {}, 401, "credentials required"),
        ("/api/actuators/movement", "not-the-token", {}, 401, "invalid credentials"),
        ("/api/estop", "guess", {}, 401, "invalid credentials"),
        (
            "/api/actuators/movement",
            r.token,
            {"Origin": "http://evil.example:8001"},
            403,
            "refused",
        ),
        ("/api/estop", r.token, {"Origin": "http://["}, 403, "refused"),  # not even a URL
    ]
    for path, token, headers, status, says in attempts:
        got, body = r.post(path, token=token, body={"command": "move"}, headers=headers)
        assert (got, says in body["error"]) == (status, True), (path, got, body)
    assert r.stream.actuator_states() == [] and pin(r.pins, "GPIO17") == 0.0
    assert health(r.port)["estop_latched"] is False
    log = r.daemon.log()
    assert r.token not in log, "stderr is a file here: the token never reaches a log"
    assert "not-the-token" not in log and "guess" not in log
    mode = stat.S_IMODE(os.stat(r.daemon.state / "control-token").st_mode)
    assert mode == 0o600


def test_commands_over_the_websocket_need_a_session(robot):
    import asyncio

    from websockets.asyncio.client import connect

    r = robot()
    status, _ = r.post("/api/login")
    assert status == 200

    async def send(message: dict, **kwargs) -> dict:
        async with connect(r.daemon.url, **kwargs) as ws:
            await ws.recv()  # the snapshot
            await ws.send(json.dumps(message))
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "reply":
                    return event["data"]

    refused = asyncio.run(send({"action": "estop"}))
    assert refused["ok"] is False and refused["status"] == 401
    assert health(r.port)["estop_latched"] is False


def test_an_oversized_body_is_refused_without_a_traceback(robot):
    import socket

    r = robot(resume=False)
    with socket.create_connection(("127.0.0.1", r.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/estop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + r.token.encode()
            + b"\r\nContent-Length: 6000\r\n\r\n"
            + b"a" * 6000
        )
        answer = sock.recv(100)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert health(r.port)["estop_latched"] is False
    assert r.daemon.proc.poll() is None and "Traceback" not in r.daemon.log()


def test_nesting_bombs_are_400s_and_a_corrupt_latch_starts_latched(robot, tmp_path):
    import socket

    r = robot(resume=False)
    status, _ = r.post(
        "/api/actuators/movement", body=None, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    with socket.create_connection(("127.0.0.1", r.port), timeout=5) as sock:
        bomb = b"[" * 4000
        sock.sendall(
            b"POST /api/actuators/movement HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + r.token.encode()
            + b"\r\nContent-Length: "
            + str(len(bomb)).encode()
            + b"\r\n\r\n"
            + bomb
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    assert r.daemon.signal(signal.SIGTERM) == 0
    (r.daemon.state / "estop.json").write_text("[" * 5000)
    r.start()
    assert r.stream.events[0]["data"]["estop_latched"] is True
    assert "E-stop state unknown" in r.daemon.log() and "Traceback" not in r.daemon.log()
