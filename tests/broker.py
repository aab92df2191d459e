"""A real Mosquitto (Debian's package) for the tests: its own config, password
file and ACL on a free port (another one if that is taken before mosquitto
binds it), and a paho-mqtt client that records what it sees.

The ACL is the one the README recommends: each robot may write only its own
topics (and Home Assistant's discovery), `operator` may command every robot,
`viewer` may only read.

For what no well-behaved broker does (ignore the robot's Maximum Packet Size,
speak only MQTT 3.1.1, accept TCP and never answer), ScriptedBroker and
SilentServer speak just enough MQTT, or none, over a plain socket.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho

from tests.conftest import PortTaken, on_free_ports, wait_for

USERS = {
    "robot1": "secret-1",
    "robot2": "secret-2",
    "robot3": "secret-3",
    "operator": "op-secret",
    "viewer": "view-secret",
}
ACL = """\
# every robot: its own topics, and Home Assistant's discovery
pattern readwrite anse/%u/#
pattern readwrite homeassistant/#

user operator
topic readwrite anse/#

user viewer
topic read anse/#
"""


def executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    assert found, f"{name} not found: install Debian's mosquitto (bash .ci/run does)"
    return found


class Mosquitto:
    def __init__(self, directory: Path, persistent: bool = False) -> None:
        """`persistent`: retained messages survive a restart, as with Debian's
        own configuration."""
        self.dir = directory
        self.persistent = persistent
        self.log = directory / "mosquitto.log"
        passwords = directory / "passwords"
        passwords.write_text("")
        for user, password in USERS.items():
            subprocess.run(
                [executable("mosquitto_passwd"), "-b", str(passwords), user, password],
                check=True,
                capture_output=True,
            )
        (directory / "acl").write_text(ACL)
        self.proc: subprocess.Popen | None = None
        self.port = on_free_ports(self._start_on)

    def _start_on(self, port: int) -> int:
        (self.dir / "mosquitto.conf").write_text(
            f"listener {port} 127.0.0.1\n"
            # Run as root (CI), it would drop to user mosquitto, who cannot
            # read pytest's private temporary directory.
            f"user {getpass.getuser()}\n"
            "allow_anonymous false\n"
            f"password_file {self.dir / 'passwords'}\n"
            f"acl_file {self.dir / 'acl'}\n"
            f"persistence {'true' if self.persistent else 'false'}\n"
            f"persistence_location {self.dir}/\n"
            f"log_dest file {self.log}\n"
            "log_type all\n"
        )
        self.start()
        return port

    def start(self) -> None:
        """Start (again, on the same port) and wait until mosquitto says it runs:
        its own line, where a connection test could reach another server."""
        before = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [executable("mosquitto"), "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def running() -> bool:
            said = self.log.read_bytes()[before:].decode() if self.log.exists() else ""
            if self.proc.poll() is not None:
                if "Address already in use" in said:
                    raise PortTaken(said)
                raise AssertionError(f"mosquitto exited:\n{said}")
            return " running" in said

        wait_for(running, 30, "mosquitto to listen")

    def stop(self) -> None:
        """SIGTERM until it has gone: one sent just as mosquitto has started
        can be lost (seen here: it logged "running" and ran on)."""
        for _ in range(10):
            if self.proc is None or self.proc.poll() is not None:
                return
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        self.proc.kill()
        self.proc.wait()

    def config(self, robot: str = "robot1", password: str | None = None) -> str:
        """The mqtt: section for a daemon logging in as `robot`."""
        secret = password or USERS[robot]
        return (
            f"mqtt: {{host: 127.0.0.1, port: {self.port}, username: {robot}, "
            f"password: {secret}, robot_id: {robot}}}\n"
        )


_client_numbers = itertools.count()


class Subscriber:
    """A paho client on its own thread, recording (topic, payload, retained)."""

    def __init__(self, broker: Mosquitto, user: str, *topics: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        # Unique: a second client with one id would take over the first's session.
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{next(_client_numbers)}"
        )
        self.client.username_pw_set(user, USERS[user])
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert connected.wait(10), "could not connect to mosquitto"
        for topic in topics:
            self.client.subscribe(topic, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def publish(self, topic: str, payload: str | bytes = "PRESS", retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(60)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _length(size: int) -> bytes:
    """MQTT's variable-length integer."""
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        out.append(digit | (0x80 if size else 0))
        if not size:
            return bytes(out)


class ScriptedBroker:
    """Just enough of an MQTT broker, on a plain socket, to do what a test says:
    answers CONNECT (refusing the protocol levels not in `levels`: 5 is MQTT 5,
    4 is 3.1.1), SUBSCRIBE, UNSUBSCRIBE, QoS 1 PUBLISH and PINGREQ, records the packet ids
    the client acknowledged, and sends the client whatever `publish` is given,
    whatever its size.  One client at a time."""

    def __init__(self, levels: frozenset[int] = frozenset({5})) -> None:
        self.levels = levels
        self.level = 0  # of the connection being served
        self.refused: list[int] = []  # protocol levels it turned away
        self.acked: list[int] = []  # packet ids of our PUBLISHes the client PUBACKed
        self.subscribed: list[str] = []
        self._client: socket.socket | None = None
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def config(self, robot: str = "robot1") -> str:
        return f"mqtt: {{host: 127.0.0.1, port: {self.port}, robot_id: {robot}}}\n"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return  # closed
            with connection, contextlib.suppress(OSError, IndexError):  # gone mid-packet
                self._session(connection)
            with self._lock:
                self._client = None

    def _session(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        while True:
            head = reader.read(1)
            if not head:
                return
            size, shift = 0, 0
            while True:
                byte = reader.read(1)[0]
                size += (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = reader.read(size)
            kind = head[0] >> 4
            if kind == 1:  # CONNECT: b"\0\4MQTT", then the level
                level = body[6]
                if level not in self.levels:
                    self.refused.append(level)
                    connection.sendall(b"\x20\x02\x00\x01")  # 3.1.1: unacceptable level
                    return
                self.level = level
                with self._lock:
                    self._client = connection
                self._send(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
            elif kind == 8:  # SUBSCRIBE: packet id, [properties], (topic, options)...
                at = 2 + (1 if self.level == 5 else 0)
                granted = b""
                while at < len(body):
                    length = int.from_bytes(body[at : at + 2], "big")
                    self.subscribed.append(body[at + 2 : at + 2 + length].decode())
                    at += 2 + length + 1
                    granted += b"\x01"
                answer = body[:2] + (b"\0" if self.level == 5 else b"") + granted
                self._send(b"\x90" + _length(len(answer)) + answer)
            elif kind == 10:  # UNSUBSCRIBE: packet id, [properties], topics
                at, topics = 2 + (1 if self.level == 5 else 0), 0
                while at < len(body):
                    at += 2 + int.from_bytes(body[at : at + 2], "big")
                    topics += 1
                answer = body[:2] + (b"\0" + b"\0" * topics if self.level == 5 else b"")
                self._send(b"\xb0" + _length(len(answer)) + answer)
            elif kind == 3 and head[0] & 0x06:  # a QoS 1 PUBLISH: acknowledge it
                length = int.from_bytes(body[:2], "big")
                self._send(b"\x40\x02" + body[2 + length : 4 + length])
            elif kind == 4:  # PUBACK for one of ours
                self.acked.append(int.from_bytes(body[:2], "big"))
            elif kind == 12:  # PINGREQ
                self._send(b"\xd0\x00")
            elif kind == 14:  # DISCONNECT
                return

    def _send(self, *pieces: bytes) -> None:
        """To the client, whole: a reply never lands inside a long publish."""
        with self._lock:
            assert self._client is not None, "no client connected"
            for piece in pieces:
                self._client.sendall(piece)

    def publish(self, topic: str, payload: bytes, packet_id: int = 0, retain: bool = False) -> None:
        """Send the client a PUBLISH (QoS 1 with a packet id, else QoS 0), the
        payload in one piece: nothing here caps its size."""
        name = topic.encode()
        head = len(name).to_bytes(2, "big") + name
        if packet_id:
            head += packet_id.to_bytes(2, "big")
        if self.level == 5:
            head += b"\0"  # no properties
        flags = (0x02 if packet_id else 0) | (0x01 if retain else 0)
        fixed = bytes([0x30 | flags]) + _length(len(head) + len(payload))
        self._send(fixed + head, payload)

    def close(self) -> None:
        self._server.close()
        with self._lock:
            if self._client is not None:
                self._client.close()


class SilentServer:
    """Accepts TCP connections and never says a word: a broker host whose
    MQTT service hangs, as a connect attempt sees it."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self.accepted.append(self._server.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self._server.close()
        for connection in self.accepted:
            connection.close()
