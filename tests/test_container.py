"""The container image, built and run with Debian's podman: non-root, the
daemon as PID 1, HEALTHCHECK on /healthz, and SIGTERM stops the motor and
exits 0; built in layers so a code change reuses the dependencies, with no
pip or build tools in what ships; run with deploy/compose.yaml's hardening.
The base image is assembled locally with mmdebstrap from Debian's packages
(bookworm's python3), so no container registry is needed.

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
from pathlib import Path

import pytest
import yaml

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


def wait_until_moving(name: str, pins: Path, where: str) -> None:
    """Wait for the container's motor to run: forward is the PWM pin (speed 0.6),
    enable is held high while it runs.  A container that exited instead raises
    PortTaken when its port was taken (the caller tries another), else fails
    with its log."""

    def moving() -> bool:
        if pin(pins, "GPIO17") == 0.6:
            return True
        if json.loads(podman("inspect", name).stdout)[0]["State"]["Running"]:
            return False
        logs = podman("logs", name).stderr
        raise (PortTaken if "Address already in use" in logs else AssertionError)(logs)

    wait_for(moving, 60, f"the motor to move in {where}", interval=0.5)


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
        wait_until_moving(names[-1], pins, "the container")
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


# -- how the image is built, and the compose file's hardening ----------------------

CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "LICENSE", "anse_hw")


def build(context: Path, tag: str) -> None:
    """Build `context` as the image fixture does."""
    podman(
        "build", "--format", "docker", "--network", "host", *LIMITS,
        "-v", f"{CA_BUNDLE}:/etc/anse-hw-build-ca.crt:ro",
        "--build-arg", "PIP_CERT=/etc/anse-hw-build-ca.crt",
        "--build-arg", f"BASE={BASE}", "-t", tag, str(context),
        timeout=600,
    )  # fmt: skip


def layers(tag: str) -> list[str]:
    return json.loads(podman("inspect", tag).stdout)[0]["RootFS"]["Layers"]


def test_a_code_change_rebuilds_only_the_code_layer(image, tmp_path):
    """The dependencies are installed before the code is copied: an edit to
    anse_hw/ reuses every layer of the dependencies (README.md, "Docker",
    has the build times)."""
    context = tmp_path / "context"
    context.mkdir()
    for name in CONTEXT:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, context / name)
    with (context / "anse_hw" / "__init__.py").open("a") as source:
        source.write("# a code change\n")
    edited = f"{IMAGE}-edited"
    try:
        build(context, edited)
        # A reinstall would write the venv afresh (new times): another layer.
        before, after = layers(image), layers(edited)
        assert len(before) == len(after)
        assert before[:-1] == after[:-1], "only the last layer, the code, may change"
        assert before[-1] != after[-1], "the code layer carries the edit"
    finally:
        podman("rmi", edited, check=False)


def test_the_runtime_image_has_no_pip_no_build_tools_and_no_cache(image):
    probe = (
        "import importlib.util as u, os, shutil; "
        "print(sorted(m for m in ('pip', 'wheel', 'build') if u.find_spec(m)), "
        "[p for p in ('/opt/build', '/root/.cache', '/src', '/wheels') if os.path.exists(p)], "
        "[t for t in ('pip', 'pip3', 'gcc', 'cc', 'make') if shutil.which(t)])"
    )
    result = podman(
        "run", "--rm", "--network", "host", *LIMITS,
        "--entrypoint", "/opt/anse-hw/bin/python", "--user", "root", image, "-c", probe,
    )  # fmt: skip
    assert result.stdout.strip() == "[] [] []"


def compose_flags() -> list[str]:
    """deploy/compose.yaml's hardening as podman run flags: every such setting
    of the file, so the test runs what users deploy."""
    service = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["anse-hw"]
    flags = ["--read-only"] if service["read_only"] else []
    flags += [f for mount in service["tmpfs"] for f in ("--tmpfs", mount)]
    flags += [f for cap in service["cap_drop"] for f in ("--cap-drop", cap)]
    flags += [f for opt in service["security_opt"] for f in ("--security-opt", opt)]
    assert {"--read-only", "--tmpfs", "--cap-drop", "--security-opt"} <= set(flags)
    return flags


def test_the_compose_hardening_runs_the_robot(image, tmp_path):
    """read_only with its tmpfs, cap_drop ALL and no-new-privileges, as
    deploy/compose.yaml has them: the robot still moves, answers /healthz and
    keeps its state, with no capability and no writable image."""
    pins_dir, state = tmp_path / "pins", tmp_path / "state"
    for folder in (pins_dir, state):
        folder.mkdir()
        folder.chmod(0o777)  # the container's user is not the test's
    pins = pins_dir / "pins.json"
    names: list[str] = []

    def start_on(port: int) -> int:
        (tmp_path / "config.yaml").write_text(ROBOT.format(port=port))
        names.append(f"anse-hw-test-{uuid.uuid4().hex[:8]}")
        podman(
            "run", "-d", "--name", names[-1], "--network", "host", *LIMITS, *compose_flags(),
            "-v", f"{tmp_path / 'config.yaml'}:/etc/anse-hw/config.yaml:ro",
            "-v", f"{pins_dir}:/pins", "-v", f"{state}:/var/lib/anse-hw",
            image,
        )  # fmt: skip
        wait_until_moving(names[-1], pins, "the hardened container")
        return port

    try:
        port = on_free_ports(start_on)
        name = names[-1]
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        status = podman("exec", name, "cat", "/proc/1/status").stdout
        assert "CapEff:\t0000000000000000" in status, status
        assert "NoNewPrivs:\t1" in status, status
        denied = podman("exec", name, "touch", "/opt/anse-hw/x", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
        podman("stop", "--time", "30", name)
        assert json.loads(podman("inspect", name).stdout)[0]["State"]["ExitCode"] == 0
        assert pin(pins, "GPIO17") == 0
    finally:
        for name in names:
            podman("rm", "-f", name, check=False)
