"""What the daemon keeps between runs, and where (docs/configuration.md, `state_dir`).

Each robot has a directory of its own under the state base (`state_dir`, or
the default below), named by its key: its `robot_id`, else its config file's
real path (readable stem, short hash).  Runs on fakes keep theirs under
`sim` or `sim-<key>`, so an E-stop on a simulation never latches a real
robot and a reset there never releases one.

Small JSON files, each written atomically (a temporary file in the same
directory, fsync, rename), so a crash or a power cut leaves the old version or
the new one, never half of each.  A file that cannot be read is reported by
the caller, who decides what "unknown" means for it (for the safety records:
the safe choice).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from anse_hw import files

#: Larger than any record we write; a bigger file is not ours.
MAX_BYTES = 1024 * 1024


def default_state_dir() -> Path:
    """$STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/anse-hw for
    root, else $XDG_STATE_HOME/anse-hw (~/.local/state/anse-hw)."""
    given = os.environ.get("STATE_DIRECTORY")
    if given:
        return Path(given.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/anse-hw")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "anse-hw"


def state_dir(configured: str | None) -> Path:
    """The configured `state_dir`, else the default."""
    return Path(configured) if configured else default_state_dir()


#: The key of the built-in simulation; other runs on fakes are `sim-<key>`.
SIM_KEY = "sim"
#: A config given as text, with neither a file nor a robot_id (programs that
#: embed the daemon): every such robot of a user shares this one.
UNNAMED_KEY = "unnamed"


def robot_key(robot_id: str | None, config_file: str | None, on_fakes: bool) -> str:
    """Whose state this is.  A robot_id holds when the file moves; without
    one, the file's real path is the identity ("robot.3f2a9c1b": a robot_id
    never has a dot, so the two kinds of key cannot meet)."""
    key = robot_id or (file_key(config_file) if config_file else None)
    if on_fakes:
        return f"{SIM_KEY}-{key}" if key else SIM_KEY
    return key or UNNAMED_KEY


def file_key(config_file: str) -> str:
    """`<stem>.<8 hex digits of the real path's SHA-256>`."""
    real = os.path.realpath(config_file)
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", Path(real).stem)[:32] or "config"
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem}.{digest}"


def robot_state_dir(
    configured: str | None, robot_id: str | None, config_file: str | None, on_fakes: bool
) -> Path:
    """The robot's own directory under the state base."""
    return state_dir(configured) / robot_key(robot_id, config_file, on_fakes)


def write_json(path: Path, data: Any) -> None:
    """Replace `path` atomically with `data` as JSON; raises OSError on failure."""
    write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def write_bytes(
    path: Path, data: bytes, mode: int = 0o600, group: str | None = None, durable: bool = True
) -> None:
    """Replace `path` atomically with `data`, already with its `mode` (and
    `group`) when it appears under its name; raises OSError on failure.

    Without `durable` there is no fsync: a reader still sees the old file or
    the new one, never half of each, but a power cut may lose the change
    (for files rewritten at every pin change, which only have to be whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if group:
                shutil.chown(tmp, group=group)
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StateFileError(Exception):
    """A state file is missing, unreadable or not what we wrote."""


def read_json(path: Path) -> Any:
    """A state file's JSON; never blocks on a FIFO, never reads a huge file."""
    try:
        data = files.read_bytes(path, MAX_BYTES)
    except files.FileProblem as exc:
        if not path.exists() and not path.is_symlink():
            raise StateFileError(f"{path} does not exist") from None
        raise StateFileError(str(exc)) from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StateFileError(f"{path} is corrupt ({type(exc).__name__})") from None
