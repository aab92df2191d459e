"""The request head and its small body, before websockets sees them.

websockets parses request heads only, and when one is malformed (a header
folded onto the next line, a Content-Length of `+18`, a Transfer-Encoding,
a line ending in a bare LF, bytes after a request that announced no body) it
closes the connection without a word: `process_request`, the documented hook,
never sees such a request, and websockets offers no hook for it.  It also
refuses any request that announces a body, and the control API's POSTs carry
a few bytes of JSON.

So `BodyConnection` (passed to `serve(create_connection=...)`) takes the
bytes first, in asyncio's own `data_received`:

- `HeadReader` collects the head (at most `MAX_HEAD` bytes) and its body (at
  most `MAX_BODY`), and hands websockets the head without its Content-Length;
  `process_request` then finds the body in `connection.request_body`.
- Before that, a throwaway sans-I/O `ServerProtocol` parses the same head:
  what it refuses, the real one would refuse in silence, so the client gets
  "400 Bad Request" and websockets' own reason instead, and the connection is
  closed.  The two parsers are the same code, so they cannot disagree on what
  is malformed.
- Bytes that arrive after the head (and its announced body) but before the
  answer are not given to websockets: a WebSocket client must wait for the
  101 (RFC 6455 §4.1) and an HTTP body must be announced.  In the same read
  as the head they get a 400; later ones are dropped, and the request is
  answered as it stands.
- Nor is the end of the stream: a client that half-closes after its request
  (`printf ... | nc -N`, HTTP/1.0 habits) got no answer, as websockets gave
  up on the connection at once; now the answer goes out first.  One that
  half-closes inside its request gets a 400 saying so.

websockets documents `serve(create_connection=...)` ("a wrapper or a subclass
to customize connection handling") and the sans-I/O `ServerProtocol`
(`receive_data`, `events_received`, `data_to_send`, `handshake_exc`,
`reject`, `close_expected`), and these are all the parsing uses: no private
reader, no patched parser.  The asyncio callbacks it overrides and the
connection's `protocol` and `transport` are not in websockets' reference;
they are listed in wsfast.UNDOCUMENTED with the fast path's, and
tests/test_wsfast.py checks every one on each websockets version we test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State
from websockets.server import ServerProtocol

MAX_BODY = 4096
#: A browser's head is 1-2 KiB with its cookies; nginx's default limit is 32 KiB.
MAX_HEAD = 64 * 1024
#: Longer digit strings are refused before int() (Python limits its digits).
MAX_LENGTH_DIGITS = 18


@dataclass(frozen=True)
class Refusal:
    """The answer to a request that is never handed to websockets."""

    status: int
    reason: str


@dataclass(frozen=True)
class Complete:
    """A well-formed head (without Content-Length) and its body."""

    head: bytes
    body: bytes


class HeadReader:
    """Sans-I/O: bytes in, None (more needed), a `Refusal` or a `Complete` out,
    the same however the bytes are split into reads.  Scans each byte once,
    and holds at most `MAX_HEAD` + `MAX_BODY` bytes and one read."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # complete lines end before this offset
        self._lines: list[bytes] = []  # the head, without Content-Length
        self._lengths: list[bytes] = []  # every Content-Length value given
        self._end: int | None = None  # where the head ends, once it has
        self._body_length: int | None = None

    def feed(self, data: bytes) -> Refusal | Complete | None:
        self._buffer += data
        if self._end is None:
            self._scan()
            # The head is at least what has arrived, until its end is found.
            if (self._end or len(self._buffer)) > MAX_HEAD:
                return Refusal(431, f"the request head is larger than {MAX_HEAD // 1024} KiB")
            if self._end is None:
                return None
            problem = _parse_problem(b"".join(self._lines)) or self._length_problem()
            if problem:
                return problem
        return self._body()

    @property
    def started(self) -> bool:
        """Some of a request has arrived."""
        return bool(self._buffer)

    def _scan(self) -> None:
        """Take the complete lines; stop at the blank one, or at the first that
        does not end in CRLF (the parser then says what is wrong)."""
        while (newline := self._buffer.find(b"\n", self._scanned)) >= 0:
            line = bytes(self._buffer[self._scanned : newline + 1])
            self._scanned = newline + 1
            name, colon, value = line.partition(b":")
            if self._lines and colon and name.lower() == b"content-length":
                self._lengths.append(value.strip(b" \t\r\n"))
                continue
            self._lines.append(line)
            if not line.endswith(b"\r\n") or (line == b"\r\n" and len(self._lines) > 1):
                self._end = self._scanned
                return

    def _length_problem(self) -> Refusal | None:
        if not self._lengths:
            self._body_length = 0
            return None
        if len(self._lengths) > 1:
            return Refusal(400, "Content-Length is given more than once")
        value = self._lengths[0]
        if not value.isdigit():  # bytes: ASCII digits only, so no sign, space or 0x
            return Refusal(400, "Content-Length must be a number of bytes (digits only)")
        if len(value) > MAX_LENGTH_DIGITS or int(value) > MAX_BODY:
            return Refusal(413, f"the request body is larger than {MAX_BODY} bytes")
        self._body_length = int(value)
        return None

    def _body(self) -> Refusal | Complete | None:
        assert self._end is not None and self._body_length is not None
        arrived = len(self._buffer) - self._end
        if arrived < self._body_length:
            return None
        if arrived > self._body_length:
            if self._body_length:
                return Refusal(400, "more bytes arrived than Content-Length announced")
            return Refusal(400, "bytes arrived after the request head; a body needs Content-Length")
        return Complete(b"".join(self._lines), bytes(self._buffer[self._end :]))


def _parse_problem(head: bytes) -> Refusal | None:
    """What websockets' parser says of `head`; None if it is a request."""
    probe = ServerProtocol()
    probe.receive_data(head)
    if probe.events_received():
        return None
    answer = b"".join(probe.data_to_send())
    if answer.startswith(b"HTTP/1.1 "):  # a limit it answers itself (414, 431)
        status = int(answer[9:12])
        return Refusal(status, _innermost(probe.handshake_exc) or "request head too large")
    return Refusal(400, _innermost(probe.handshake_exc) or "incomplete request head")


def _innermost(exc: BaseException | None) -> str:
    """The most specific reason in an exception chain, as one short line."""
    text = ""
    while exc is not None:
        text = str(exc) or text
        exc = exc.__cause__
    text = text.encode("ascii", "backslashreplace").decode()
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


class BodyConnection(ServerConnection):
    """A connection whose request head passes `HeadReader` before websockets."""

    def __init__(self, protocol: Any, server: Any, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.request_body = b""
        self._head: HeadReader | None = HeadReader()
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            if self.state is not State.CONNECTING:
                super().data_received(data)
            return  # before the answer: see the module's docstring
        outcome = self._head.feed(data)
        if outcome is None:
            return
        self._head = None
        if isinstance(outcome, Refusal):
            self._refuse(outcome)
        else:
            self.request_body = outcome.body
            super().data_received(outcome.head)

    def eof_received(self) -> bool | None:
        if self._refused:
            return None  # answered already: asyncio closes the transport
        if self._head is not None and self._head.started:
            self._head = None
            self._refuse(Refusal(400, "the request ended before its head or body did"))
            return None
        if self._head is None and self._unanswered():
            self._pass_eof_when_answered()
            return True  # our half stays open for the answer
        return super().eof_received()

    def _unanswered(self) -> bool:
        """websockets has the request and has not answered it yet."""
        return self.state is State.CONNECTING and not self.protocol.close_expected()

    def _pass_eof_when_answered(self) -> None:
        """Hand websockets the end of the stream once its answer is out
        (websockets has no event for that; a half-closed client is rare, and
        its opening timeout bounds the wait)."""
        if self.transport.is_closing():
            return
        if self._unanswered():
            self.loop.call_later(0.01, self._pass_eof_when_answered)
        elif not super().eof_received():
            self.transport.close()

    def _refuse(self, refusal: Refusal) -> None:
        """Answer, then half-close: the client reads the answer before our EOF,
        and websockets' opening timeout ends a client that never closes."""
        self._refused = True
        response = self.protocol.reject(refusal.status, f"{refusal.reason}\n")
        self.transport.write(response.serialize())
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()
