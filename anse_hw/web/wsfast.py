"""Everything the hub uses of websockets beyond its documented API, in one place.

The fan-out writes one prepared frame to a thousand sockets the way
`websockets.broadcast()` does internally, and drops a client whose socket has
stopped taking bytes.  websockets documents neither: a connection's `paused`
flag, its `transport`, its sans-I/O `protocol` (for framing under
compression), and the asyncio `Protocol` callbacks a `ServerConnection`
receives (`pause_writing`, `resume_writing`, `connection_lost`; and
`data_received`, `eof_received`, through which httpbody.py sees the request
head first).  Nothing else in anse_hw touches these names (httpbody.py's
`BodyConnection` is the one other subclass); `UNDOCUMENTED` lists them, and
tests/test_wsfast.py fails loudly, naming the one that is gone, when a
websockets upgrade removes or renames one.

What the rest of the web package uses is documented: `serve()` with its
`create_connection` factory (a `ServerConnection` subclass), `process_request`,
`ServerConnection.state`, `request`, `send`, `remote_address`, and the sans-I/O
`ServerProtocol` (httpbody.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from anse_hw.web.httpbody import BodyConnection

log = logging.getLogger(__name__)

#: Attributes of a live `ServerConnection` (and of its `protocol`) used here.
UNDOCUMENTED = (
    "paused",
    "transport",
    "loop",
    "protocol",
    "protocol.extensions",
    "protocol.send_text",
    "protocol.data_to_send",
    "protocol.reject",
    "protocol.close_expected",
    "data_received",
    "eof_received",
    "pause_writing",
    "resume_writing",
    "connection_lost",
)


def missing(ws: ServerConnection) -> list[str]:
    """The names of `UNDOCUMENTED` that `ws` lacks: empty while websockets
    still has what the fast path needs."""
    gone = []
    for name in UNDOCUMENTED:
        owner: Any = ws
        for part in name.split("."):
            if not hasattr(owner, part):
                gone.append(name)
                break
            owner = getattr(owner, part)
    return gone


def keeps_up(ws: ServerConnection) -> bool:
    """Open, and the kernel takes what we write: a direct write now cannot
    grow a backlog in asyncio's buffer."""
    return not ws.paused and ws.state is State.OPEN


def write_frames(ws: ServerConnection, framed: bytes) -> None:
    """Bytes already framed for a connection without extensions."""
    ws.transport.write(framed)


def compresses(ws: ServerConnection) -> bool:
    """Frames for this connection are its own (permessage-deflate), not shared."""
    return bool(ws.protocol.extensions)


def write_texts(ws: ServerConnection, payloads: Iterable[bytes]) -> None:
    """Text messages framed by the connection itself, as one write."""
    protocol = ws.protocol
    for payload in payloads:
        protocol.send_text(payload)
    data = b"".join(protocol.data_to_send())
    if data:
        ws.transport.write(data)


def abort(ws: ServerConnection) -> None:
    """Drop the connection now, without a closing handshake: it is not reading."""
    ws.transport.abort()


def limit_send_buffer(ws: ServerConnection, size: int) -> None:
    """A fixed kernel send buffer instead of autotuning (up to 4 MB per client)."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


class StreamConnection(BodyConnection):
    """A connection that is dropped once its writes have been blocked for
    `stall_limit` seconds without a break.

    websockets' keepalive cannot catch a client that stopped reading: its
    ping waits behind the full buffers and is never sent, so it never times
    out, and such clients would keep their slots (and `max_clients`) forever,
    whether or not they keep sending.  The limit is the keepalive's own
    (`server.ping_interval`, also the time a ping may go unanswered): a client
    that cannot even be sent a ping for that long is treated as one that did
    not answer it.  A slow client that still reads resumes the transport now
    and then, and each resume starts the count again."""

    def __init__(self, protocol: Any, server: Any, *, stall_limit: float, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.stall_limit = stall_limit
        #: What dropping it means; the hub names the client here once it joins.
        self.on_stall: Callable[[], None] = self._abort_stalled
        self._stall_timer: asyncio.TimerHandle | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall_timer = self.loop.call_later(self.stall_limit, lambda: self.on_stall())

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall_timer()
        super().connection_lost(exc)

    def _cancel_stall_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _abort_stalled(self) -> None:
        peer = self.remote_address[0] if self.remote_address else "?"
        log.warning(
            "✗ Connection from %s dropped: it read nothing for %g s",
            peer,
            self.stall_limit,
        )
        abort(self)
