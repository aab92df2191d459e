"""The one module that uses websockets beyond its documented API still works.

If a websockets upgrade removes or renames something web/wsfast.py relies
on, these tests fail first and name it, instead of the fan-out failing in
some stranger way (or clients silently getting nothing).
"""

from __future__ import annotations

import asyncio
import functools

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode

from anse_hw.web import wsfast


async def exercise(compression: str | None) -> tuple[list[str], bool, list[str]]:
    """Serve one client through wsfast: what is missing on the live
    connection, whether it compresses, and what the client received."""
    seen: dict = {}

    async def handler(ws) -> None:
        seen["missing"] = wsfast.missing(ws)
        seen["compresses"] = wsfast.compresses(ws)
        seen["keeps_up"] = wsfast.keeps_up(ws)
        wsfast.limit_send_buffer(ws, 32 * 1024)
        if wsfast.compresses(ws):
            wsfast.write_texts(ws, [b"one", b"two"])
        else:
            framed = b"".join(Frame(Opcode.TEXT, p).serialize(mask=False) for p in (b"one", b"two"))
            wsfast.write_frames(ws, framed)
        await ws.wait_closed()

    factory = functools.partial(wsfast.StreamConnection, stall_limit=30.0)
    async with serve(
        handler, "127.0.0.1", 0, compression=compression, create_connection=factory
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=compression) as client:
            got = [await asyncio.wait_for(client.recv(), 30) for _ in range(2)]
    assert seen["keeps_up"], "a fresh open connection must count as keeping up"
    return seen["missing"], seen["compresses"], got


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_websockets_still_has_every_undocumented_name_the_fast_path_uses(compression):
    missing, compresses, got = asyncio.run(exercise(compression))
    assert missing == [], (
        f"websockets {websockets.__version__} lacks {missing}, which web/wsfast.py uses: "
        "adapt wsfast.py (and only it) before lifting the pin"
    )
    assert compresses == (compression is not None)
    assert got == ["one", "two"]  # what the fast path wrote reached the client as messages


def test_missing_names_what_a_connection_lacks():
    """The check itself can fail: an object without the names is reported."""
    assert wsfast.missing(object()) == list(wsfast.UNDOCUMENTED)
