"""The live Foxglove view (README.md, "Live in Foxglove"): the daemon as a
process, a client speaking Foxglove's published WebSocket protocol
(serverInfo, advertise, subscribe, binary message frames) as the Foxglove
app does.  The app offers both names of the protocol: foxglove.sdk.v1, the
one foxglove-sdk 0.30 serves, and foxglove.websocket.v1, the older one."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import subprocess
import sys
import time

import jsonschema
import pytest
import websockets

from tests.conftest import ROOT, daemon_env, fast_sim_config, wait_for, write_config

pytest.importorskip("foxglove", reason="the foxglove extra: pip install -e '.[test,foxglove]'")

SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]
MESSAGE_DATA = 0x01  # the binary opcode of a message frame
READINGS, EVENTS, WORLD = "/readings/distance_sensor", "/events", "/worldmodel"


def live_port(daemon) -> int:
    found = re.search(r"Foxglove live view: ws://127\.0\.0\.1:(\d+)", daemon.log())
    assert found, daemon.log()
    return int(found[1])


async def subscribe_and_collect(port: int, until, deadline: float = 60.0):
    """Connect as Foxglove does, subscribe to the three kinds of channel and
    decode the message frames until `until(received)` holds; returns the
    advertised channels by topic and the received (topic, log_time, message)."""
    async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS) as ws:
        assert ws.subprotocol in SUBPROTOCOLS
        info, channels = None, {}
        end = time.monotonic() + deadline
        while info is None or not {READINGS, EVENTS, WORLD} <= set(channels):
            frame = json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
            if frame["op"] == "serverInfo":
                info = frame
            elif frame["op"] == "advertise":
                channels.update({c["topic"]: c for c in frame["channels"]})
        assert info["name"] == "anse-hw"
        topics = {i: topic for i, topic in enumerate((READINGS, EVENTS, WORLD), start=1)}
        subscriptions = [{"id": i, "channelId": channels[t]["id"]} for i, t in topics.items()]
        await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
        received: list[tuple[str, int, dict]] = []
        while not until(received):
            frame = await asyncio.wait_for(ws.recv(), end - time.monotonic())
            if isinstance(frame, bytes) and frame[0] == MESSAGE_DATA:
                subscription, log_time = struct.unpack_from("<IQ", frame, 1)
                received.append((topics[subscription], log_time, json.loads(frame[13:])))
        return channels, received


def test_a_foxglove_client_subscribes_and_decodes_readings_events_and_the_world_model(
    start_daemon, watch
):
    daemon = start_daemon(
        fast_sim_config(0, interval=0.03) + "foxglove: {host: 127.0.0.1, port: 0}\n"
    )
    stream = watch(daemon.url)
    before = time.time_ns()

    def enough(received) -> bool:
        kinds = {m["type"] for topic, _, m in received if topic == EVENTS}
        got = {topic for topic, _, _ in received}
        return {"actuator", "reflex"} <= kinds and {READINGS, WORLD} <= got

    channels, received = asyncio.run(subscribe_and_collect(live_port(daemon), enough))
    for topic in (READINGS, EVENTS, WORLD):  # JSON with a JSON schema: Plot and Raw Messages
        assert channels[topic]["encoding"] == "json"
        assert channels[topic]["schemaEncoding"] == "jsonschema"
    schemas = {t: json.loads(channels[t]["schema"]) for t in (READINGS, EVENTS, WORLD)}
    for topic, log_time, message in received:
        jsonschema.validate(message, schemas[topic])
        assert before - 60e9 < log_time < time.time_ns() + 1e9, "the wall clock, not 1970"
    values = [m["value"] for t, _, m in received if t == READINGS and m["value"] is not None]
    assert values and all(isinstance(v, float | int) for v in values)  # /readings/…value plots
    assert any(m["type"] == "reflex" for t, _, m in received if t == EVENTS)
    assert all("actuators" in m and "safe" in m for t, _, m in received if t == WORLD)
    # The dashboard's stream goes on as before.
    wait_for(lambda: stream.actuator_states().count("STOPPED") >= 1, what="a stop on the stream")


def test_a_stalled_foxglove_client_never_delays_a_stop(start_daemon, watch):
    daemon = start_daemon(
        fast_sim_config(0, interval=0.01) + "foxglove: {host: 127.0.0.1, port: 0}\n"
    )
    stream = watch(daemon.url)

    async def stall() -> None:
        """Subscribe to everything, then read nothing while the robot runs on."""
        async with websockets.connect(
            f"ws://127.0.0.1:{live_port(daemon)}", subprotocols=SUBPROTOCOLS, max_queue=1
        ) as ws:
            channels: dict = {}
            while not {READINGS, EVENTS, WORLD} <= set(channels):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame["op"] == "advertise":
                    channels.update({c["topic"]: c for c in frame["channels"]})
            ids = [c["id"] for c in channels.values()]
            subscriptions = [{"id": i, "channelId": c} for i, c in enumerate(ids, start=1)]
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
            seen = stream.actuator_states().count("STOPPED")
            await asyncio.to_thread(
                wait_for,
                lambda: stream.actuator_states().count("STOPPED") >= seen + 5,
                60,
                "five more stops while the Foxglove client reads nothing",
            )

    asyncio.run(stall())
    assert "Traceback" not in daemon.log()


def test_a_taken_port_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path, fast_sim_config(0) + f"foxglove: {{host: 127.0.0.1, port: {port}}}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "anse_hw", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env=daemon_env(tmp_path),
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert f"foxglove: cannot listen on 127.0.0.1:{port}" in line, line
