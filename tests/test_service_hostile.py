"""install-service and uninstall-service are all or nothing: every check
before the first change, the run's changes undone when a later step fails,
never a write through a planted symbolic link, one line and exit 1 for what
went wrong on the system (exit 2 for a bad config or usage)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from anse_hw.app.service import Installer, python_problem
from anse_hw.errors import Failure
from tests.conftest import EXAMPLES, ROOT, daemon_env, run_cli
from tests.test_serial_ports import DROP_CAPABILITIES

CONFIG = EXAMPLES / "sim.yaml"


def install(root: Path | str, *extra: str, config: Path = CONFIG, cwd: Path = ROOT):
    return subprocess.run(
        [sys.executable, "-m", "anse_hw", "install-service", "--config", str(config)]
        + ([] if root is None else ["--root", str(root)])
        + list(extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=daemon_env(Path(cwd)),
    )


def tree(root: Path) -> dict[str, object]:
    """Every path under `root`: file modes and contents, link targets, 'dir'."""
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = (oct(path.stat().st_mode), path.read_bytes())
    return found


def one_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [x for x in result.stderr.splitlines() if "ERROR" in x or "error:" in x]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


@pytest.mark.parametrize(
    ("root", "reason"), [("", "is empty"), ("a\0b", None)], ids=["empty", "nul"]
)
def test_a_root_that_is_no_path_is_a_usage_error(tmp_path, root, reason):
    """`--root ''` used to stage into the current directory."""
    if "\0" in root:  # no argv can carry a NUL: the same rule, called as argparse does
        from anse_hw.app.cli import root_path

        with pytest.raises(Exception, match="contains a NUL byte"):
            root_path(root)
        return
    result = install(root, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert f"--root: '' {reason}" in result.stderr and "Traceback" not in result.stderr
    assert tree(tmp_path) == {"state": "dir"} or tree(tmp_path) == {}


@pytest.mark.parametrize(
    "planted",
    ["etc/anse-hw", "etc/anse-hw/config.yaml", "etc/systemd/system/anse-hw.service", "etc"],
)
def test_a_planted_symlink_is_refused_before_any_change(tmp_path, planted):
    """Root writing through `<root>/etc/anse-hw -> /somewhere` writes /somewhere."""
    root, target = tmp_path / "root", tmp_path / "target"
    target.mkdir()
    (target / "precious").write_text("keep me")
    link = root / planted
    link.parent.mkdir(parents=True)
    link.symlink_to(target if not planted.endswith((".yaml", ".service")) else target / "precious")
    before, aimed = tree(root), tree(target)
    result = install(root)
    one_error(result, 1, f"{link} is a symbolic link (to {target}", "remove it")
    assert tree(root) == before and tree(target) == aimed
    assert "✓" not in result.stdout


def test_a_later_failure_undoes_what_this_run_wrote(tmp_path):
    """The unit cannot be written (its directory is a file): the config it
    had already written, and the directories it made, are taken back."""
    root = tmp_path / "root"
    (root / "etc/systemd").mkdir(parents=True)
    (root / "etc/systemd/system").write_text("not a directory")
    before = tree(root)
    result = install(root)
    one_error(result, 1, "cannot change", "every change of this run was undone")
    assert f"↩ undid: wrote {root}/etc/anse-hw/config.yaml" in result.stdout
    assert tree(root) == before  # no etc/anse-hw, no stray temporary files


def test_an_undo_never_brings_back_a_file_from_an_older_run(tmp_path):
    """A run killed mid-way leaves its copy of the old config behind; the
    next run's undo must not install that as "the previous config"."""
    root = tmp_path / "root"
    (root / "etc/anse-hw").mkdir(parents=True)
    (root / "etc/anse-hw/.config.yaml.before-install").write_text("stale: true\n")
    (root / "etc/systemd").mkdir()
    (root / "etc/systemd/system").write_text("not a directory")
    result = install(root)
    one_error(result, 1, "every change of this run was undone")
    assert not (root / "etc/anse-hw/config.yaml").exists()
    assert tree(root / "etc/anse-hw") == {}


def test_a_later_failure_puts_the_previous_install_back(tmp_path):
    root = tmp_path / "root"
    assert install(root, config=EXAMPLES / "pi-robot.yaml").returncode == 0
    unit = root / "etc/systemd/system/anse-hw.service"
    unit.chmod(0o600)
    unit.write_text("a unit someone edited by hand")
    # The unit's directory takes no new files (for a root without its
    # capabilities): the new config is written, the unit is not.
    (root / "etc/systemd/system").chmod(0o555)
    before = tree(root)
    argv = ["install-service", "--config", str(CONFIG), "--root", str(root)]
    try:
        result = subprocess.run(
            [*DROP_CAPABILITIES, sys.executable, "-m", "anse_hw", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env=daemon_env(tmp_path),
        )
    finally:
        (root / "etc/systemd/system").chmod(0o755)
    one_error(result, 1, "Permission denied", "every change of this run was undone")
    assert f"✓ wrote {root}/etc/anse-hw/config.yaml" in result.stdout
    assert tree(root) == before  # the pi-robot config is back, byte for byte, and nothing else


def test_uninstall_purge_refuses_a_linked_config_dir_with_a_real_message(tmp_path):
    root = tmp_path / "root"
    assert install(root).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    (root / "etc/anse-hw").rename(elsewhere)
    (root / "etc/anse-hw").symlink_to(elsewhere)
    before = tree(root)
    result = run_cli("uninstall-service", "--root", str(root), "--purge")
    one_error(result, 1, f"{root}/etc/anse-hw is a symbolic link (to {elsewhere})")
    assert "None" not in result.stderr
    assert tree(root) == before and (elsewhere / "config.yaml").exists()  # nothing removed


def test_the_advice_for_a_hidden_python_installs_something_that_exists():
    """anse-hw is not on PyPI: `pip install anse-hw` would fail or, worse,
    install someone else's package.  The advice names this checkout."""
    advice = python_problem("/home/pi/venv/bin/python")
    assert f"sudo /opt/anse-hw/bin/pip install {ROOT}\n" in advice
    assert "pip install anse-hw\n" not in advice
    assert (ROOT / "pyproject.toml").is_file()


def test_a_failing_system_command_is_a_runtime_failure():
    """useradd or systemctl failing is exit 1 (errors.Failure), never 2: the
    config was fine."""
    from anse_hw.app.cli import user_errors

    with pytest.raises(Failure, match=r"^`false` failed \(exit 1\)$"):
        Installer.call("false")
    with pytest.raises(Failure, match="is not installed: is this a systemd machine"):
        Installer.call("anse-hw-no-such-command")
    assert user_errors(lambda: Installer.call("false")) == 1


# -- the live path: refusals before any change ------------------------------------


@pytest.fixture
def untouched_system():
    """The live install path may be tried only where it can be seen to
    change nothing: as root, with no anse-hw user, config or unit yet."""
    live = (Path("/etc/anse-hw"), Path("/etc/systemd/system/anse-hw.service"))
    if os.geteuid() != 0:
        pytest.skip("the live path needs root")
    try:
        pwd.getpwnam("anse-hw")
        pytest.skip("an anse-hw user exists here")
    except KeyError:
        pass
    if any(p.exists() or p.is_symlink() for p in live):
        pytest.skip("anse-hw is installed here")
    if python_problem(sys.executable):
        pytest.skip("this Python is one the service could not see")
    yield
    created = [str(p) for p in live if p.exists() or p.is_symlink()]
    try:
        pwd.getpwnam("anse-hw")
        created.append("user anse-hw")
    except KeyError:
        pass
    assert not created, f"a refused install changed the system: {created}"


@pytest.mark.parametrize(
    ("config", "code", "reason"),
    [
        (EXAMPLES / "pi-hcsr04.yaml", 2, "gpio.pin_factory lgpio is not usable here"),
        (None, 2, "serial port /dev/ttyNOPE0 does not exist"),
    ],
    ids=["pin-factory", "serial-port"],
)
def test_live_install_refuses_what_check_refuses_before_any_change(
    tmp_path, untouched_system, config, code, reason
):
    """lgpio cannot load here: install-service used to create the user and
    write the files anyway, and fail only at systemctl."""
    if config is None:
        config = tmp_path / "robot.yaml"
        config.write_text(
            "sensors:\n  - {name: lidar, driver: serial, port: /dev/ttyNOPE0, protocol: tfmini}\n"
        )
    result = install(None, config=config)
    assert result.returncode == code, result.stdout + result.stderr
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert "✓" not in result.stdout
