"""Server behaviour under load and abuse (docs/protocol.md, "Slow clients"),
through a real daemon."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Coroutine
from datetime import datetime

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from tests.conftest import collect, http_get, stalled_client, wait_for

#: One sensor and one motor, for tests that feed the engine themselves.
ONE_SENSOR = """
sensors:
  - {name: front, driver: sim, interval: 10, max_age: 30}
actuators:
  - {name: movement, driver: sim}
reflexes:
  - {name: stop_close, sensor: front, below: 10, actuator: movement, command: stop}
"""

SCRIPT = "[" + ", ".join(["80"] * 20 + ["5"] * 20) * 1 + "]"


def config(port: int, sensor: str, server: str = "") -> str:
    return f"""
server: {{host: 127.0.0.1, port: {port}{server}}}
sensors:
  - {{name: s, driver: sim, interval: 0.01, {sensor}}}
actuators:
  - {{name: movement, driver: sim}}
reflexes:
  - {{name: stop, sensor: s, below: 10, actuator: movement, command: stop}}
  - {{name: go, sensor: s, above: 15, actuator: movement, command: move}}
"""


def health(port: int) -> dict:
    return json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])


def test_stalled_client_gets_every_reflex_and_actuator_and_the_latest_telemetry(start_daemon):
    values = ", ".join((["80"] * 20 + ["5"] * 20) * 16)
    daemon = start_daemon(
        config(0, f"profile: script, values: [{values}], repeat: false", ", client_buffer: 100000")
    )
    port = daemon.port

    def until(what: str, condition) -> Coroutine:
        """wait_for off the event loop, which goes on reading `steady`."""
        return asyncio.to_thread(wait_for, lambda: condition(health(port)), 30, what)

    async def read_until_timeout(ws) -> list[dict]:
        got = []
        async with asyncio.timeout(30):
            while not any(
                e["type"] == "reflex" and e["data"]["reflex_name"] == "sensor_timeout"
                for e in got[-4:]
            ):
                got.append(json.loads(await ws.recv()))
        return got

    async def scenario():
        small = socket.socket()
        small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        small.connect(("127.0.0.1", port))
        async with (
            connect(daemon.url) as steady,
            connect(daemon.url, sock=small, max_queue=1, close_timeout=0.5) as stalled,
        ):
            steady_task = asyncio.create_task(read_until_timeout(steady))
            # `stalled` is not read until the daemon says it is behind and has
            # replaced some of its telemetry with newer values.
            await until("the stalled client to fall behind", lambda h: h["clients_behind"] >= 1)
            await until("its telemetry to be conflated", lambda h: h["frames_conflated"] > 0)
            late = await read_until_timeout(stalled)
            return await steady_task, late

    steady, late = asyncio.run(scenario())
    critical = lambda events: [e["seq"] for e in events if e["type"] in ("reflex", "actuator")]  # noqa: E731
    start = late[1]["seq"]
    expected = [s for s in critical(steady) if s >= start]
    assert expected and critical(late)[-len(expected) :] == expected
    sensors = lambda events: [e for e in events if e["type"] == "sensor"]  # noqa: E731
    assert len(sensors(late)) < len(sensors(steady)), "telemetry was conflated"
    assert sensors(late)[-1] == sensors(steady)[-1], "the latest value arrives"
    assert late[-1]["data"] == steady[-1]["data"]


def test_max_hz_limits_telemetry_not_reflexes(start_daemon):
    """One telemetry flush per 10 s asked for: every reflex and actuator event
    still arrives, each as it happens with the reading of that moment."""
    # A threshold crossed once a second: a wake per crossing, even on a slow machine.
    text = config(0, f"profile: script, values: {SCRIPT}").replace("0.01", "0.05")
    daemon = start_daemon(text)

    async def until_actuators(url: str, count: int = 4) -> list[dict]:
        got: list[dict] = []
        async with connect(url) as ws, asyncio.timeout(60):
            while sum(e["type"] == "actuator" for e in got) < count:
                got.append(json.loads(await ws.recv()))
        return got

    async def scenario():
        return await asyncio.gather(
            until_actuators(daemon.url), until_actuators(daemon.url + "/?max_hz=0.1")
        )

    full, limited = asyncio.run(scenario())
    first = max(full[0]["seq"], limited[0]["seq"])  # the snapshots
    last = min(full[-1]["seq"], limited[-1]["seq"])

    def seqs(events: list[dict], *kinds: str) -> list[int]:
        return [e["seq"] for e in events if e["type"] in kinds and first < e["seq"] <= last]

    assert seqs(full, "actuator"), "both clients saw the same crossings"
    assert seqs(limited, "reflex", "actuator") == seqs(full, "reflex", "actuator")
    # Each crossing woke the limited client on its own and brought the newest
    # reading along (held back for the timer, crossings would share one);
    # otherwise only the timer's telemetry (the daemon's clock says how often
    # it fired), never the full rate.
    count = lambda events, kind: sum(e["type"] == kind for e in events)  # noqa: E731
    timer = (stamp(limited[-1]) - stamp(limited[0])) // 10
    crossings = count(limited, "actuator")
    assert crossings <= count(limited, "sensor") <= crossings + 2 + timer
    assert len(seqs(limited, "sensor")) < len(seqs(full, "sensor"))
    assert [e["seq"] for e in limited] == sorted(e["seq"] for e in limited), "in stream order"


def stamp(event: dict) -> float:
    """An event's timestamp, in seconds."""
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def test_connection_cap_answers_503(start_daemon):
    daemon = start_daemon(config(0, "profile: constant", ", max_clients: 3"))

    async def scenario():
        clients = [await connect(daemon.url) for _ in range(3)]
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(daemon.url)
            assert refused.value.response.status_code == 503
        finally:
            for ws in clients:
                await ws.close()
        async with connect(daemon.url) as again:  # room again once they left
            await again.recv()

    asyncio.run(scenario())
    wait_for(lambda: "3 clients is the limit" in daemon.log(), what="the refusal logged")


def test_inbound_message_limit(start_daemon):
    daemon = start_daemon(config(0, "profile: constant", ", max_message_bytes: 1024"))

    async def scenario():
        async with connect(daemon.url) as ws:
            await ws.send("hello")  # small messages are ignored, the stream goes on
            await ws.recv()
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosedError) as closed:
                async with asyncio.timeout(30):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd.code == 1009  # message too big

    asyncio.run(scenario())


def test_healthz_200_when_fresh_503_when_stale(start_daemon):
    # Two seconds of readings (longer on a slow machine), then silence.
    values = ", ".join(["50"] * 40)
    daemon = start_daemon(
        config(0, f"profile: script, values: [{values}], repeat: false, max_age: 0.3").replace(
            "0.01", "0.05"
        )
    )

    def answer(status: int):
        code, raw = http_get(f"http://127.0.0.1:{daemon.port}/healthz")
        return json.loads(raw) if code == status else None

    fresh = wait_for(lambda: answer(200), what="/healthz to report the fresh sensor")
    assert fresh["status"] == "ok" and fresh["sensors"]["s"]["fresh"] is True, fresh
    assert fresh["actuators"] == {"movement": "MOVING"}
    stale = wait_for(lambda: answer(503), what="/healthz to report the stale sensor")
    assert stale["status"] == "stale" and stale["stale_sensors"] == ["s"]
    assert stale["actuators"] == {"movement": "STOPPED"}
    assert daemon.proc.poll() is None


def test_unknown_paths_are_404_and_the_dashboard_is_served(start_daemon):
    port = start_daemon(config(0, "profile: constant")).port
    assert http_get(f"http://127.0.0.1:{port}/nope")[0] == 404
    assert http_get(f"http://127.0.0.1:{port}/../pyproject.toml")[0] == 404
    status, body = http_get(f"http://127.0.0.1:{port}/")
    assert status == 200 and b"<html" in body.lower()


def test_a_client_that_cannot_keep_up_is_dropped_with_a_reason(start_daemon):
    values = ", ".join(["80", "5"] * 400)  # a reflex and an actuator event per reading
    daemon = start_daemon(config(0, f"profile: script, values: [{values}]", ", client_buffer: 20"))
    small = stalled_client(daemon.port)
    try:
        wait_for(
            lambda: "dropped: fell 20 reflex/actuator events behind" in daemon.log(),
            timeout=30,
            what="the slow client to be dropped",
        )
        assert health(daemon.port)["clients"] == 0
        asyncio.run(collect(daemon.url, lambda r: len(r) > 10))  # others are still served
    finally:
        small.close()


def test_an_event_made_while_a_client_joins_alone_reaches_it():
    """With nobody connected the engine builds no events.  A client's snapshot
    is taken on the event loop while the sensor thread keeps going; here the
    sensor thread gets its turn right after the snapshot (the worst moment).
    The event it makes must still reach the client, right after the snapshot."""
    from anse_hw import config as configuration
    from anse_hw.readings import Sample
    from anse_hw.web.hub import Hub
    from tests.conftest import engine_for

    text = "server: {host: 127.0.0.1, port: 0}\n" + ONE_SENSOR
    engine, _ = engine_for(text)
    server_config = configuration.parse(text).server

    async def main() -> list[dict]:
        loop = asyncio.get_running_loop()

        def snapshot() -> dict:
            taken = engine.snapshot_event()
            engine.on_sample("front", Sample(40.0))  # the sensor thread's turn
            return taken

        hub = Hub(server_config, snapshot, engine.health)
        engine.publish = lambda batch: loop.call_soon_threadsafe(hub.publish, batch)
        engine.audience = hub.listening
        engine.on_sample("front", Sample(30.0))  # nobody there: not even built
        server = await hub.start()
        try:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                return [json.loads(await asyncio.wait_for(ws.recv(), 30)) for _ in range(3)]
        finally:
            server.close()
            await server.wait_closed()

    first, *after = asyncio.run(main())
    assert first["type"] == "worldmodel"
    assert [(e["type"], e["seq"]) for e in after] == [
        ("sensor", first["seq"] + 1),
        ("worldmodel", first["seq"] + 2),
    ]
    assert after[0]["data"]["value"] == 40.0
