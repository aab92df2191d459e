"""The container image, built and run with Debian's podman: non-root, the
daemon as PID 1, HEALTHCHECK on /healthz, and SIGTERM stops the motor and
exits 0.  The base image is assembled locally with mmdebstrap from Debian's
packages (bookworm's python3), so no container registry is needed.

This sandbox needs runc (crun refuses its hybrid cgroup layout) and explicit
ulimits (podman's defaults exceed the hard limit here); on an ordinary Docker
or podman host the Dockerfile needs none of that."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import uuid

import pytest

from tests.conftest import ROOT, PortTaken, http_get, on_free_ports, pin, wait_for

PODMAN = shutil.which("podman")
BASE = "localhost/anse-hw-test-base:bookworm"
#: Our own tag: test runs of other checkouts on the same machine build theirs.
IMAGE = f"localhost/anse-hw:test-{uuid.uuid4().hex[:8]}"
ENGINE = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]
CA_BUNDLE = (
    os.environ.get("PIP_CERT")
    or ssl.get_default_verify_paths().cafile
    or ("/etc/ssl/certs/ca-certificates.crt")
)
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]

pytestmark = pytest.mark.skipif(
    PODMAN is None or shutil.which("mmdebstrap") is None,
    reason="podman and mmdebstrap are not installed (.ci/run installs them)",
)


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [PODMAN, *ENGINE, *args], capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """Debian bookworm's python3 as a base image, then the Dockerfile on top."""
    if podman("image", "exists", BASE, check=False).returncode != 0:
        rootfs = tmp_path_factory.mktemp("base") / "rootfs.tar"
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv",
             "bookworm", str(rootfs), "http://deb.debian.org/debian"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        podman("import", str(rootfs), BASE, timeout=300)
    # pip inside the build trusts what pip on this machine trusts (a sandbox
    # may inspect TLS with its own authority).
    podman(
        "build", "--format", "docker", "--network", "host", *LIMITS,
        "-v", f"{CA_BUNDLE}:/etc/anse-hw-build-ca.crt:ro",
        "--build-arg", "PIP_CERT=/etc/anse-hw-build-ca.crt",
        "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT),
        timeout=600,
    )  # fmt: skip
    yield IMAGE
    podman("rmi", IMAGE, check=False)  # the tag; an image other tags name stays


ROBOT = """
server: {{host: 127.0.0.1, port: {port}}}
gpio: {{pin_factory: mock, mock_state_file: /pins/pins.json}}
sensors:
  - {{name: front, driver: sim, interval: 0.05}}
actuators:
  - {{name: movement, driver: gpio, forward: 17, backward: 18, enable: 12, speed: 0.6}}
reflexes:
  - {{name: proximity_safeguard, sensor: front, below: 10, actuator: movement, command: stop}}
  - {{name: clear_to_move, sensor: front, above: 15, actuator: movement, command: move}}
"""


def test_sigterm_to_the_container_stops_the_motor_and_exits_0(image, tmp_path):
    pins_dir = tmp_path / "pins"
    pins_dir.mkdir()
    pins_dir.chmod(0o777)  # the container's user is not the test's
    pins = pins_dir / "pins.json"
    names: list[str] = []

    def start_on(port: int) -> int:
        """On the host's network, on the config's port (the HEALTHCHECK reads it
        there too): PortTaken if another process has it."""
        (tmp_path / "config.yaml").write_text(ROBOT.format(port=port))
        names.append(f"anse-hw-test-{uuid.uuid4().hex[:8]}")
        podman(
            "run", "-d", "--name", names[-1], "--network", "host", *LIMITS,
            "-v", f"{tmp_path / 'config.yaml'}:/etc/anse-hw/config.yaml:ro",
            "-v", f"{pins_dir}:/pins",
            image,
        )  # fmt: skip

        def moving() -> bool:
            # Forward is the PWM pin (speed 0.6); enable is held high while it runs.
            if pin(pins, "GPIO17") == 0.6:
                return True
            if json.loads(podman("inspect", names[-1]).stdout)[0]["State"]["Running"]:
                return False
            logs = podman("logs", names[-1]).stderr
            raise (PortTaken if "Address already in use" in logs else AssertionError)(logs)

        wait_for(moving, 60, "the motor to move in the container", interval=0.5)
        return port

    try:
        port = on_free_ports(start_on)
        name = names[-1]
        assert pin(pins, "GPIO12") == 1.0
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        assert podman("exec", name, "id", "-u").stdout.strip() == "999"
        init = podman("exec", name, "cat", "/proc/1/cmdline").stdout
        assert "anse-hw" in init, "the daemon itself is PID 1"

        podman("stop", "--time", "30", name)
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        logs = podman("logs", name).stderr + podman("logs", name).stdout
        assert state["ExitCode"] == 0, logs  # 137 would mean it was killed
        assert pin(pins, "GPIO17") == 0 and pin(pins, "GPIO12") == 0, logs
        assert "stopping motors" in logs
    finally:
        for name in names:
            podman("rm", "-f", name, check=False)


def test_without_a_config_the_container_says_what_to_mount(image):
    result = podman("run", "--rm", "--network", "host", *LIMITS, image, check=False)
    assert result.returncode == 2
    assert "no configuration" in result.stderr
    assert "Traceback" not in result.stderr
