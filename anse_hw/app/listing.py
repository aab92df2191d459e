"""`anse-hw recordings DIR`: one line per recording, its span, sensors and counts."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from anse_hw import files, recording
from anse_hw.errors import FAILURE, OK, ConfigError
from anse_hw.recording import Summary

log = logging.getLogger("anse_hw")

#: When a file in the directory could not be read (the rest is listed).
EXIT_SKIPPED = FAILURE


def list_recordings(directory: str) -> int:
    """One line per file; a file that cannot be read is skipped with a note
    (and EXIT_SKIPPED), the others are still listed."""
    paths = _mcap_files(directory)
    if not paths:
        print(f"no recordings in {directory}")
        return OK
    skipped = 0
    for path in paths:
        try:
            summary = recording.scan(path)
        except files.FileProblem as exc:
            log.warning("skipped: %s", exc)
            skipped += 1
            continue
        print(_listed(summary), flush=True)
    return EXIT_SKIPPED if skipped else OK


def _mcap_files(directory: str) -> list[Path]:
    problem = files.path_problem(directory)
    if problem:
        raise ConfigError([f"recordings: the directory {problem}"])
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".mcap"))
    except NotADirectoryError:
        raise ConfigError(
            [f"{directory} is not a directory: give the directory the recordings are in"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{directory}: cannot list it ({exc.strerror})"]) from None
    return [Path(directory) / name for name in names]


def _listed(s: Summary) -> str:
    status = "" if s.complete else "  (cut short)"
    sensors = ", ".join(_escaped(name) for name in sorted(s.sensors)) or "-"
    return (
        f"{_escaped(s.path.name)}  {s.span:.1f} s  sensors: {sensors}  "
        f"readings {s.readings}, events {sum(s.events.values())} "
        f"(reflex {s.events['reflex']}, actuator {s.events['actuator']}){status}"
    )


def _escaped(name: str) -> str:
    """A name from the disk or from a file, escaped as in every file message: a
    newline or an undecodable byte in it cannot break the one line per file."""
    return repr(name)[1:-1]
