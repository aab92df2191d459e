"""The sim daemon end to end: `anse-hw` as a process, real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import (
    actuator_states,
    check_contract,
    collect,
    fast_sim_config,
    http_get,
    wait_for,
)


def full_cycle_seen(received: list[dict]) -> bool:
    """A STOP and then a MOVING after it: the robot approached and receded."""
    states = actuator_states(received)
    moved_again = "STOPPED" in states and "MOVING" in states[states.index("STOPPED") :]
    return moved_again and received[-1]["type"] == "worldmodel"


def test_full_cycle_follows_the_contract(start_daemon):
    daemon = start_daemon(fast_sim_config(0))
    received = asyncio.run(collect(daemon.url, full_cycle_seen))

    for event in received:
        check_contract(event)
    assert received[0]["type"] == "worldmodel", "a new client gets a snapshot first"
    seqs = [e["seq"] for e in received[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "events arrive in order"

    stream = received[1:]
    # A worldmodel update follows every other event.
    for i, event in enumerate(stream[:-1]):
        if event["type"] != "worldmodel":
            assert stream[i + 1]["type"] == "worldmodel", (i, event, stream[i + 1])

    types = [e["type"] for e in stream]
    crossings = [i for i, t in enumerate(types) if t == "reflex"]
    assert crossings, "the cycle crosses both thresholds"
    for i in crossings:
        assert types[i - 2 : i + 4] == [
            "sensor",
            "worldmodel",
            "reflex",
            "worldmodel",
            "actuator",
            "worldmodel",
        ]
        value = stream[i - 2]["data"]["value"]
        reflex = stream[i]["data"]["reflex_name"]
        state = stream[i + 2]["data"]["state"]
        if state == "STOPPED":
            assert value < 10 and reflex == "proximity_safeguard"
        else:
            assert value > 15 and reflex == "clear_to_move"
        assert stream[i + 3]["data"]["actuator_state"] == state
        assert stream[i + 3]["data"]["last_reflex"] == reflex

    # Hysteresis: a reading between 10 and 15 never fires anything.
    for i, event in enumerate(stream[:-2]):
        if event["type"] == "sensor" and 10 <= event["data"]["value"] <= 15:
            assert stream[i + 2]["type"] != "reflex", event

    counts = [e["data"]["total_events"] for e in stream if e["type"] == "worldmodel"]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_seed_pattern_values(start_daemon):
    daemon = start_daemon(fast_sim_config(0, interval=0.02))
    received = asyncio.run(
        collect(daemon.url, lambda r: sum(e["type"] == "sensor" for e in r) >= 40)
    )
    values = [e["data"]["value"] for e in received if e["type"] == "sensor"]
    start = next(i for i, v in enumerate(values) if v == 50 and values[i + 1] == 44.5)
    cycle = values[start : start + 16]
    assert cycle == [50, 44.5, 39, 33.5, 28, 22.5, 17, 11.5, 5, 10.5, 16, 21.5, 27, 32.5, 38, 43.5]


def test_two_clients_get_the_same_sequence_and_a_late_one_gets_a_snapshot(start_daemon):
    daemon = start_daemon(fast_sim_config(0, interval=0.02))

    async def scenario():
        async with connect(daemon.url) as a, connect(daemon.url) as b:
            first_a = [json.loads(await a.recv()) for _ in range(60)]
            first_b = [json.loads(await b.recv()) for _ in range(60)]
            async with connect(daemon.url) as late:
                snapshot = json.loads(await late.recv())
                after = json.loads(await late.recv())
        return first_a, first_b, snapshot, after

    first_a, first_b, snapshot, after = asyncio.run(scenario())
    common = set(e["seq"] for e in first_a[1:]) & set(e["seq"] for e in first_b[1:])
    assert len(common) >= 40
    pick = lambda events: [e for e in events[1:] if e["seq"] in common]  # noqa: E731
    assert pick(first_a) == pick(first_b), "both clients see identical events in identical order"

    check_contract(snapshot)
    assert snapshot["type"] == "worldmodel"
    assert snapshot["seq"] >= first_a[-1]["seq"]
    assert after["seq"] == snapshot["seq"] + 1, "the stream continues right after the snapshot"


def test_compressed_and_plain_clients_get_the_same_stream(start_daemon):
    """With `server.compression` on, a client that negotiates permessage-deflate
    gets frames of its own; one that does not gets the bytes shared by all."""
    config = fast_sim_config(0, interval=0.02).replace(
        "server: {host: 127.0.0.1,", "server: {compression: true, host: 127.0.0.1,"
    )
    daemon = start_daemon(config)

    async def scenario():
        async with (
            connect(daemon.url, compression="deflate") as deflated,
            connect(daemon.url, compression=None) as plain,
        ):
            assert deflated.protocol.extensions and not plain.protocol.extensions
            return (
                [json.loads(await deflated.recv()) for _ in range(40)],
                [json.loads(await plain.recv()) for _ in range(40)],
            )

    deflated, plain = asyncio.run(scenario())
    common = {e["seq"] for e in deflated[1:]} & {e["seq"] for e in plain[1:]}
    assert len(common) >= 20
    pick = lambda events: [e for e in events[1:] if e["seq"] in common]  # noqa: E731
    assert pick(deflated) == pick(plain)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_motor_and_exits_zero(start_daemon, sig):
    daemon = start_daemon(fast_sim_config(0, extra_sensor=", profile: constant, value: 50"))
    wait_for(
        lambda: "MOVING" in http_get(f"http://127.0.0.1:{daemon.port}/healthz")[1].decode(),
        what="the motor to move",
    )

    async def scenario():
        async with connect(daemon.url) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot["data"]["actuator_state"] == "MOVING"  # constant 50 cm: clear
            daemon.proc.send_signal(sig)
            received = [snapshot]
            try:
                async with asyncio.timeout(30):
                    async for message in ws:
                        received.append(json.loads(message))
            except ConnectionClosed:
                pass
        return received

    received = asyncio.run(scenario())
    assert daemon.proc.wait(timeout=30) == 0
    assert actuator_states(received)[-1] == "STOPPED"
    assert received[-1]["data"]["actuator_state"] == "STOPPED"
    assert "anse-hw stopped; movement STOPPED; pins released (exit 0)" in daemon.log()
