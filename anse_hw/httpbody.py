"""Small request bodies on websockets' one port.

websockets reads request heads only, and refuses any request that announces
a body (Content-Length > 0) before `process_request` sees it.  The control
API's POSTs carry a few bytes of JSON, so `BodyConnection` (passed to
`serve(create_connection=...)`, websockets' supported hook) reads that body
while the head is parsed: it hides Content-Length from websockets' check,
and when the blank line after the headers arrives it takes up to `MAX_BODY`
bytes from the same sans-I/O reader.  `process_request` then finds them in
`connection.request_body`.  A larger body keeps its Content-Length, so
websockets refuses the request itself (400) without reading it.

This leans on the sans-I/O reader (`ServerProtocol.reader`, whose
`read_line`/`read_exact` generators websockets has kept since version 11);
websockets is pinned below 18 and tests/test_control.py posts bodies, so a
change there fails loudly rather than silently.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection

MAX_BODY = 4096
BODY_LENGTH = "X-Anse-Body-Length"


class BodyConnection(ServerConnection):
    def __init__(self, protocol: Any, server: Any, **kwargs: Any) -> None:
        super().__init__(protocol, server, **kwargs)
        self.request_body = b""
        reader = protocol.reader
        read_line, read_exact = reader.read_line, reader.read_exact
        announced = [0]

        def read_line_taking_the_body(*args: Any, **kw: Any):
            line = yield from read_line(*args, **kw)
            name, colon, value = bytes(line).partition(b":")
            if colon and name.strip().lower() == b"content-length":
                length = value.strip()
                if not length.isdigit() or int(length) > MAX_BODY:
                    return line  # websockets answers 400 and never reads the body
                announced[0] = int(length)
                return BODY_LENGTH.encode() + b":" + value
            if line in (b"\r\n", b"\n") and 0 < announced[0] <= MAX_BODY:
                self.request_body = bytes((yield from read_exact(announced[0])))
            return line

        reader.read_line = read_line_taking_the_body
        # websockets started its parser in the protocol's constructor, with the
        # original method; start it again with ours (nothing has arrived yet).
        protocol.parser = protocol.parse()
        next(protocol.parser)
