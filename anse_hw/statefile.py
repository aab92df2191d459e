"""What the daemon keeps between runs, and where (SPEC §13 `state_dir`).

Small JSON files, each written atomically (a temporary file in the same
directory, fsync, rename), so a crash or a power cut leaves the old version or
the new one, never half of each.  A file that cannot be read is reported by
the caller, who decides what "unknown" means for it (for the safety records:
the safe choice).
"""

from __future__ import annotations

import json
import os
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


def write_json(path: Path, data: Any) -> None:
    """Replace `path` atomically with `data` as JSON; raises OSError on failure."""
    write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def write_bytes(path: Path, data: bytes, mode: int = 0o600, group: str | None = None) -> None:
    """Replace `path` atomically with `data`, already with its `mode` (and
    `group`) when it appears under its name; raises OSError on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if group:
                shutil.chown(tmp, group=group)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
