"""What the broker may send us is bounded, before paho holds any of it.

MQTT 5's Maximum Packet Size asks the broker not to send more than the
bridge's `max_packet` bytes; `InboundLimit` enforces it on our side too, for
brokers that ignore it or speak only MQTT 3.1.1.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes

#: Room for all we ever receive besides a topic we subscribe to: "online" or
#: "offline" from Home Assistant, an E-stop button's "PRESS", what MQTT 5
#: properties a broker adds, and headers.  A few KiB is a hundredfold margin,
#: and the most a hostile publisher can make us hold at once.
PACKET_ROOM = 4096
#: Where InboundLimit reports a message it dropped: a broker never delivers a
#: topic starting with '$' to a '+'/'#'-free subscription of ours.
OVERSIZED = "$anse-hw/oversized"


class InboundLimit:
    """Keeps every packet from the broker within `limit` bytes before paho
    buffers it.

    paho reads a whole packet into memory (growing it by bytes concatenation)
    before it looks at it: one 100 MB message took the daemon to ~450 MB and
    held the event loop for half a second.  An InboundLimit stands where paho
    reads its socket and hands paho a filtered byte stream: packets within the
    limit unchanged; an oversized PUBLISH reduced to the same PUBLISH (same QoS
    and packet id, so paho still acknowledges it and the broker's in-flight
    window does not fill up) on the topic OVERSIZED with no properties and no
    payload, the rest read and discarded in pieces, never held.  Any other
    oversized packet ends the connection: no broker sends one.

    MQTT 5 says a client disconnects on a packet over its Maximum Packet Size;
    we drop it instead, because a retained oversized message would otherwise
    make every reconnect fail again, and the E-stop commands with it.

    It never reads past the packet paho is reading: bytes held here while the
    socket is quiet would wait for the next packet to arrive.
    """

    #: A long skip yields to the event loop every this many reads.
    READS_PER_CALL = 16
    SKIP_CHUNK = 65536

    def __init__(self, read: Callable[[int], bytes], limit: int, mqtt5: bool) -> None:
        self._read = read
        self.limit = limit
        self._mqtt5 = mqtt5
        self._ready = bytearray()  # for paho, decided on
        self._parser = self._packets()
        self._wanted = next(self._parser)

    def recv(self, size: int) -> bytes:
        """paho's socket read: up to `size` bytes; b"" at the end of the
        stream; BlockingIOError when nothing is ready yet."""
        reads = 0
        while not self._ready:
            if reads == self.READS_PER_CALL:
                raise BlockingIOError  # level-triggered: we are called again
            data = self._read(self._wanted)
            if not data:
                return data
            reads += 1
            self._wanted = self._parser.send(data)
        taken = bytes(self._ready[:size])
        del self._ready[:size]
        return taken

    def _packets(self) -> Generator[int, bytes, None]:
        """Yields how many bytes it needs next, is sent what arrived (maybe
        fewer), and puts what paho is to see into self._ready."""
        while True:
            header = bytearray((yield from self._take(1)))
            remaining, shift = 0, 0
            while True:
                byte = (yield from self._take(1))[0]
                header.append(byte)
                remaining += (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
                if len(header) == 5:
                    raise ConnectionAbortedError("malformed packet length from the broker")
            size = len(header) + remaining
            if size <= self.limit:
                self._ready += header
                self._ready += yield from self._take(remaining)
                continue
            command = header[0]
            if command >> 4 != PacketTypes.PUBLISH:
                raise ConnectionAbortedError(
                    f"the broker sent a {size}-byte packet of type {command >> 4}; "
                    f"the limit is {self.limit}"
                )
            topic_length = int.from_bytes((yield from self._take(2)), "big")
            yield from self._skip(topic_length)
            packet_id = (yield from self._take(2)) if command & 0x06 else b""
            rest = remaining - 2 - topic_length - len(packet_id)
            if rest < 0:
                raise ConnectionAbortedError("malformed PUBLISH from the broker")
            self._ready += self._stand_in(command, packet_id)
            yield from self._skip(rest)

    def _stand_in(self, command: int, packet_id: bytes) -> bytes:
        topic = OVERSIZED.encode()
        body = len(topic).to_bytes(2, "big") + topic + packet_id + (b"\0" if self._mqtt5 else b"")
        return bytes((command, len(body))) + body  # len(body) < 128: a one-byte length

    @staticmethod
    def _take(count: int) -> Generator[int, bytes, bytes]:
        got = b""
        while len(got) < count:
            got += yield count - len(got)
        return got

    @classmethod
    def _skip(cls, count: int) -> Generator[int, bytes, None]:
        while count:
            count -= len((yield min(count, cls.SKIP_CHUNK)))


def limit_inbound(client: aiomqtt.Client, limit: int, mqtt5: bool) -> None:
    """Put an InboundLimit between `client`'s socket and its packet reader.

    The one place that reaches inside aiomqtt and paho, which offer no hook
    for it: aiomqtt's paho client is `_client`, and paho reads every byte it
    receives through `Client._sock_recv(bufsize)` (paho-mqtt 2.x).
    tests/test_mqtt_hostile.py sends oversized packets through a real
    connection, and fails if paho reads past this.
    """
    inner = getattr(client, "_client", None)
    read = getattr(inner, "_sock_recv", None)
    if not isinstance(inner, paho.Client) or not callable(read):
        raise RuntimeError(
            "this aiomqtt/paho-mqtt cannot take the inbound packet-size limit "
            "(aiomqtt Client._client / paho Client._sock_recv changed)"
        )
    inner._sock_recv = InboundLimit(read, limit, mqtt5).recv
