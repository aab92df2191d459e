"""The wheel as pip installs it, outside this checkout: one top-level package,
the dashboard and example configs inside it, found from any working
directory, in a fresh venv and with `pip install --user`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pip
import pytest

from tests.conftest import EXAMPLES, LISTENING, ROOT, http_get, wait_for

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what the sdist holds, so the checkout stays clean."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(
        ROOT / "anse_hw", source / "anse_hw", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("anse_hw-*.whl")
    return built


def test_the_wheel_holds_one_package_with_its_dashboard_examples_and_unit(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "anse_hw",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    for needed in (
        "anse_hw/web/dashboard/index.html",
        "anse_hw/web/dashboard/app.js",
        "anse_hw/web/dashboard/style.css",
        "anse_hw/examples/pi-robot.yaml",
        "anse_hw/unit/anse-hw.service",
        "anse_hw/kinds.py",
    ):
        assert needed in names


def serves_the_dashboard_from_root(command: list[str], env: dict[str, str], tmp_path: Path) -> None:
    """Started from /, as systemd or a user in another directory would."""
    env = {**env, "STATE_DIRECTORY": str(tmp_path / "state")}
    log = tmp_path / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, "--sim", "--host", "127.0.0.1", "--port", "0"],
            cwd="/", env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def listening() -> int | None:
                assert proc.poll() is None, log.read_text()
                found = LISTENING.search(log.read_text())
                return int(found.group(1)) if found else None

            port = wait_for(listening, 30, "the daemon to listen")

            def page() -> bytes | None:
                assert proc.poll() is None, log.read_text()
                try:
                    status, body = http_get(f"http://127.0.0.1:{port}/")
                except OSError:
                    return None
                return body if status == 200 else None

            assert b"<title>anse-hw dashboard</title>" in wait_for(page, 30, "the dashboard")
            assert http_get(f"http://127.0.0.1:{port}/app.js")[0] == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
    assert "Dashboard:  http://" in log.read_text()


def test_a_fresh_venv_non_editable(wheel, tmp_path):
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    subprocess.run(
        [str(target / "bin/python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    serves_the_dashboard_from_root([str(target / "bin/anse-hw")], env, tmp_path)
    example = subprocess.run(
        [str(target / "bin/anse-hw"), "example", "pi-robot"],
        cwd="/", env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert example.stdout == (EXAMPLES / "pi-robot.yaml").read_text()


def test_pip_install_user(wheel, tmp_path):
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    userbase = tmp_path / "userbase"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONUSERBASE"] = str(userbase)
    env.pop("PYTHONNOUSERSITE", None)
    # The base interpreter runs this venv's pip and nothing else of the venv:
    # a fresh Debian's python3 has no pip (python3-pip is another package).
    only_pip = tmp_path / "only-pip"
    only_pip.mkdir()
    (only_pip / "pip").symlink_to(Path(pip.__file__).parent)
    subprocess.run(
        [base, "-m", "pip", "install", "-q", "--user", "--break-system-packages", str(wheel)],
        check=True, timeout=300, env={**env, "PYTHONPATH": str(only_pip)},
    )  # fmt: skip
    serves_the_dashboard_from_root([str(userbase / "bin/anse-hw")], env, tmp_path)
