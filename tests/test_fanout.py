"""Server behaviour under load and abuse (SPEC §8), through a real daemon."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from tests.conftest import collect, free_port, http_get, stalled_client, wait_for

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


def test_stalled_client_gets_every_reflex_and_actuator_and_the_latest_telemetry(start_daemon):
    port = free_port()
    values = ", ".join((["80"] * 20 + ["5"] * 20) * 16)
    daemon = start_daemon(
        config(
            port, f"profile: script, values: [{values}], repeat: false", ", client_buffer: 100000"
        ),
        port,
    )

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
            behind = False
            for _ in range(300):  # do not read `stalled` until the daemon says it is behind
                await asyncio.sleep(0.01)
                health = json.loads(
                    (await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/healthz"))[1]
                )
                if health["clients_behind"] >= 1:
                    behind = True
                    break
            assert behind, "the stalled client never fell behind"
            await asyncio.sleep(1.0)  # stay stalled while the stream goes on
            health = json.loads(
                (await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/healthz"))[1]
            )
            assert health["frames_conflated"] > 0, health
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
    port = free_port()
    daemon = start_daemon(config(port, f"profile: script, values: {SCRIPT}"), port)

    async def scenario():
        async def gather(url: str) -> list[dict]:
            got = []
            async with connect(url) as ws:
                try:
                    async with asyncio.timeout(2.0):
                        while True:
                            got.append(json.loads(await ws.recv()))
                except TimeoutError:
                    pass
            return got

        # One telemetry flush per 5 s: within the 2 s window, every reflex and
        # actuator event must still arrive, each at once and with its telemetry.
        return await asyncio.gather(gather(daemon.url), gather(daemon.url + "/?max_hz=0.2"))

    full, limited = asyncio.run(scenario())
    count = lambda events, kind: sum(e["type"] == kind for e in events)  # noqa: E731
    assert count(full, "sensor") > 100
    assert count(full, "actuator") >= 4
    assert count(limited, "actuator") >= count(full, "actuator") - 2
    assert count(limited, "reflex") >= count(full, "reflex") - 2
    # Telemetry only with those events (plus the snapshot), never at the full rate.
    assert count(limited, "sensor") <= count(limited, "actuator") + 2
    seqs = [e["seq"] for e in limited]
    assert seqs == sorted(seqs), "in stream order"


def test_connection_cap_answers_503(start_daemon):
    port = free_port()
    daemon = start_daemon(config(port, "profile: constant", ", max_clients: 3"), port)

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
    assert "3 clients is the limit" in daemon.log()


def test_inbound_message_limit(start_daemon):
    port = free_port()
    daemon = start_daemon(config(port, "profile: constant", ", max_message_bytes: 1024"), port)

    async def scenario():
        async with connect(daemon.url) as ws:
            await ws.send("hello")  # small messages are ignored, the stream goes on
            await ws.recv()
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosedError) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd.code == 1009  # message too big

    asyncio.run(scenario())


def test_healthz_200_when_fresh_503_when_stale(start_daemon):
    port = free_port()
    daemon = start_daemon(
        config(port, "profile: script, values: [50, 50, 50], repeat: false, max_age: 0.3"), port
    )
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok", health
    assert health["sensors"]["s"]["fresh"] is True
    assert health["actuators"] == {"movement": "MOVING"}

    def stale():
        code, raw = http_get(f"http://127.0.0.1:{port}/healthz")
        return (code, json.loads(raw)) if code == 503 else None

    _, health = wait_for(stale, what="/healthz to report the stale sensor")
    assert health["status"] == "stale" and health["stale_sensors"] == ["s"]
    assert health["actuators"] == {"movement": "STOPPED"}
    assert daemon.proc.poll() is None


def test_unknown_paths_are_404_and_the_dashboard_is_served(start_daemon):
    port = free_port()
    start_daemon(config(port, "profile: constant"), port)
    assert http_get(f"http://127.0.0.1:{port}/nope")[0] == 404
    assert http_get(f"http://127.0.0.1:{port}/../pyproject.toml")[0] == 404
    status, body = http_get(f"http://127.0.0.1:{port}/")
    assert status == 200 and b"<html" in body.lower()


def test_a_client_that_cannot_keep_up_is_dropped_with_a_reason(start_daemon):
    port = free_port()
    values = ", ".join(["80", "5"] * 400)  # a reflex and an actuator event per reading
    daemon = start_daemon(
        config(port, f"profile: script, values: [{values}]", ", client_buffer: 20"), port
    )
    small = stalled_client(port)
    try:
        wait_for(
            lambda: "dropped: fell 20 reflex/actuator events behind" in daemon.log(),
            timeout=30,
            what="the slow client to be dropped",
        )
        health = json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])
        assert health["clients"] == 0
        asyncio.run(collect(daemon.url, lambda r: len(r) > 10))  # others are still served
    finally:
        small.close()


def test_an_event_made_while_a_client_joins_alone_reaches_it():
    """With nobody connected the engine builds no events.  A client's snapshot
    is taken on the event loop while the sensor thread keeps going; here the
    sensor thread gets its turn right after the snapshot (the worst moment).
    The event it makes must still reach the client, right after the snapshot."""
    from anse_hw import config as configuration
    from anse_hw.drivers.base import Sample
    from anse_hw.server import Hub
    from tests.conftest import engine_for

    port = free_port()
    text = f"server: {{host: 127.0.0.1, port: {port}}}\n" + ONE_SENSOR
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
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
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
