"""WebSocket clients for the benchmarks, run as their own process.

`count` clients read everything (recording when each sensor value arrived),
plus `stalled` clients that complete the handshake and never read again.
Output: one JSON line with totals and a binary file of (value, arrival)
pairs, arrival on CLOCK_MONOTONIC, which the harness process shares.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import socket
import sys
import time

from websockets.asyncio.client import connect


def stalled_client(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    return sock


async def reader(
    url: str,
    values: array.array,
    stats: dict,
    ready: asyncio.Event,
    connected: list[int],
    count: int,
    record: bool,
) -> None:
    try:
        async with connect(
            url, max_size=None, compression=None, open_timeout=60, ping_interval=None
        ) as ws:
            connected[0] += 1
            if connected[0] == count:
                ready.set()
            async for message in ws:
                stats["messages"] += 1
                if record and message.startswith('{"type":"sensor"'):
                    now = time.monotonic()
                    event = json.loads(message)
                    values.append(event["data"]["value"])
                    values.append(now)
    except Exception as exc:  # report, don't hide: a dropped client is a result
        stats["errors"] += 1
        stats["last_error"] = repr(exc)


async def main(args: argparse.Namespace) -> None:
    host, port = args.url.split("//")[1].split("/")[0].split(":")
    stalled = [stalled_client(host, int(port)) for _ in range(args.stalled)]
    values: array.array = array.array("d")
    stats = {"messages": 0, "errors": 0}
    ready = asyncio.Event()
    connected = [0]
    url = args.url + (f"/?max_hz={args.max_hz}" if args.max_hz else "")
    tasks = []
    for i in range(args.count):
        tasks.append(
            asyncio.create_task(
                reader(url, values, stats, ready, connected, args.count, i < args.record)
            )
        )
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    if args.count:
        await asyncio.wait_for(ready.wait(), 120)
    print(json.dumps({"ready": True, "connected": connected[0]}), flush=True)
    # Wait for the harness to say when to start and stop counting.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    stats["messages"], values_start, started = 0, len(values), time.monotonic()
    await loop.run_in_executor(None, sys.stdin.readline)
    elapsed = time.monotonic() - started
    received = values[values_start:]
    if args.out:
        with open(args.out, "wb") as handle:
            received.tofile(handle)
    print(
        json.dumps(
            {
                "messages": stats["messages"],
                "seconds": elapsed,
                "errors": stats["errors"],
                "last_error": stats.get("last_error"),
            }
        ),
        flush=True,
    )
    for task in tasks:
        task.cancel()
    for sock in stalled:
        sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--stalled", type=int, default=0)
    parser.add_argument("--max-hz", type=float, default=0)
    parser.add_argument(
        "--record", type=int, default=1_000_000, help="how many clients record arrival times"
    )
    parser.add_argument("--out")
    asyncio.run(main(parser.parse_args()))
