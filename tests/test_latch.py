"""The E-stop latch is on disk before it is acknowledged (issue 19 item 3).

The pins stop at once; the HTTP answer and the stream's `operator_estop`
come only after the latch file is written and fsync'd.  When it cannot be
(a full state disk), the answer, the world model and the dashboard say the
latch is held in memory only, and a restart comes up latched.  A daemon that
fails to start leaves the latch file as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.conftest import fast_sim_config, http_get, open_page, text, wait_for

#: The same robot across restarts (each start writes a new config file).
ROBOT = "robot_id: latchbot\n"


def post(port: int, path: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def token(daemon) -> str:
    return (daemon.state / "control-token").read_text().strip()


def run(coroutine) -> Any:
    """asyncio.run on a thread of its own (Playwright's sync API keeps a loop
    running on this one once the browser is up)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def snapshot(daemon) -> dict:
    """The world model a new client gets first."""

    async def first() -> dict:
        async with connect(f"ws://127.0.0.1:{daemon.port}") as ws:
            return json.loads(await ws.recv())["data"]

    return run(first())


def not_durable(daemon) -> dict | None:
    """The world model, once it says the latch is held in memory only."""
    world = snapshot(daemon)
    return world if world["estop_durable"] is False else None


def health(daemon) -> dict:
    return json.loads(http_get(f"http://127.0.0.1:{daemon.port}/healthz")[1])


@pytest.fixture
def small_disk(tmp_path):
    """The daemons' state base (tmp_path/state) on a 1 MiB tmpfs of its own."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(state)], check=True)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=True)


def fill(disk: Path) -> Path:
    """Fill the tmpfs to the last byte (again: a removed latch file frees a
    page); the returned file frees it all."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def test_an_estop_on_a_full_state_disk_is_held_in_memory_and_a_restart_comes_up_latched(
    start_daemon, small_disk, browser
):
    config = ROBOT + fast_sim_config(0)
    daemon = start_daemon(config)
    assert snapshot(daemon)["estop_durable"] is True
    filler = fill(small_disk)

    status, body = post(daemon.port, "/api/estop", token(daemon))
    assert status == 200 and body["latched"] is True and body["durable"] is False
    assert "held in memory only" in body["warning"] and "No space left" in body["warning"]
    wait_for(lambda: "E-stop latch held in memory only" in daemon.log(), what="the log line")
    world = snapshot(daemon)
    assert world["estop_latched"] is True and world["estop_durable"] is False
    assert health(daemon)["estop_durable"] is False
    page = open_page(browser)
    try:
        page.goto(f"http://127.0.0.1:{daemon.port}/")
        page.wait_for_selector("#latch-banner:not([hidden])")
        assert "held in memory only" in text(page, "#latch-banner")
    finally:
        page.context.close()

    # Restart with the disk still full: latched, and it says the disk cannot be written.
    assert daemon.signal(signal.SIGTERM) == 0
    fill(small_disk)
    daemon = start_daemon(config)
    world = wait_for(lambda: not_durable(daemon), what="the write at start to fail")
    assert world["estop_latched"] is True
    # A reset that cannot be written says so; a restart is latched again.
    status, body = post(daemon.port, "/api/reset", token(daemon))
    assert status == 200 and body["latched"] is False and body["durable"] is False
    assert "reset not saved" in body["warning"]
    assert daemon.signal(signal.SIGTERM) == 0

    # Space again: still latched after the restart, until a reset that sticks.
    filler.unlink()
    daemon = start_daemon(config)
    world = snapshot(daemon)
    assert world["estop_latched"] is True and world["estop_durable"] is True
    assert post(daemon.port, "/api/reset", token(daemon)) == (
        200,
        {"latched": False, "actuators": {"movement": "STOPPED"}, "durable": True},
    )
    assert daemon.signal(signal.SIGTERM) == 0
    assert snapshot(start_daemon(config))["estop_latched"] is False


def test_killed_the_instant_the_stream_shows_the_estop_the_restart_is_latched(start_daemon):
    """20 rounds: E-stop, SIGKILL as soon as `operator_estop` arrives on the
    stream, restart (which checks the last round and resets for the next)."""
    config = ROBOT + fast_sim_config(0)
    rounds = 20
    daemon = start_daemon(config)
    for done in range(rounds + 1):
        world = snapshot(daemon)
        assert world["estop_latched"] is (done > 0), f"after {done} kills"
        if done == rounds:
            break
        if done:
            assert post(daemon.port, "/api/reset", token(daemon))[1]["durable"] is True
        run(estop_then_kill(daemon, token(daemon)))
        assert daemon.proc.wait(timeout=15) == -signal.SIGKILL
        daemon = start_daemon(config)


async def estop_then_kill(daemon, key: str) -> None:
    """POST /api/estop; SIGKILL the daemon the moment the stream shows it."""
    loop = asyncio.get_running_loop()
    async with connect(f"ws://127.0.0.1:{daemon.port}") as ws:
        await ws.recv()  # the snapshot: from here on, events
        answer = loop.run_in_executor(None, lambda: post(daemon.port, "/api/estop", key))
        async with asyncio.timeout(20):
            async for message in ws:
                data = json.loads(message)["data"]
                if data.get("reflex_name") == "operator_estop" and data.get("triggered"):
                    os.kill(daemon.proc.pid, signal.SIGKILL)
                    break
    with contextlib.suppress(OSError):  # the answer may not have made it out
        await answer


def test_a_start_that_fails_on_a_taken_port_leaves_the_latch_as_it_was(start_daemon):
    config = ROBOT + fast_sim_config(0)
    daemon = start_daemon(config)
    assert post(daemon.port, "/api/estop", token(daemon))[0] == 200
    latch = daemon.state / "estop.json"
    assert daemon.signal(signal.SIGTERM) == 0
    before = (latch.read_bytes(), latch.stat().st_mtime_ns)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = start_daemon(config, args=("--port", str(port)), wait=False)
        assert failed.proc.wait(timeout=20) == 1
    assert "cannot listen on 127.0.0.1" in failed.log()
    assert (latch.read_bytes(), latch.stat().st_mtime_ns) == before
    assert json.loads(before[0])["latched"] is True
