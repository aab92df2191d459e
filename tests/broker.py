"""A real Mosquitto (Debian's package) for the tests: its own config, password
file and ACL on a free port (another one if that is taken before mosquitto
binds it), and a paho-mqtt client that records what it sees.

The ACL is the one the README recommends: each robot may write only its own
topics (and Home Assistant's discovery), `operator` may command every robot,
`viewer` may only read.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
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
    def __init__(self, directory: Path) -> None:
        self.dir = directory
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
            "persistence false\n"
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


class Subscriber:
    """A paho client on its own thread, recording (topic, payload, retained)."""

    def __init__(self, broker: Mosquitto, user: str, *topics: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
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

    def publish(self, topic: str, payload: str = "PRESS") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
