"""How a driver or a config section declares its YAML keys: `Option` and the
small, pure checks its values pass through (`in_range`, `one_of`, `bcm_pin`,
`a_path`).  Every message a check returns ends up after the key's file and
line in `--check`'s output, so it is written for the robot builder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anse_hw import files

REQUIRED: Any = object()


@dataclass(frozen=True)
class Option:
    """One driver-specific YAML key: its type, default and how to check it.

    `check` returns a sentence saying what is wrong, or None.  `pin` marks a
    BCM GPIO number so the config can catch a pin used twice.  An explicit
    `null` means "the default", unless `null_is_off`: then it means None
    (`discovery_prefix: null` turns discovery off).
    """

    key: str
    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    pin: bool = False
    null_is_off: bool = False


def in_range(low: float, high: float, unit: str = "") -> Callable[[float], str | None]:
    """A check for a number from `low` to `high`, both included.  Every
    number has an upper bound too: a huge value is never what a user meant,
    and some (1e308 MB) overflow where they are used."""

    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be from {low:g} to {high:g}{unit}"

    return check


#: Linux's PATH_MAX less the terminating NUL: the longest path open() takes.
MAX_PATH_BYTES = 4095


def a_path(value: str) -> str | None:
    """A file or directory name the daemon will open: checked here, so that
    `--check` says what the C layer would only say with a traceback (NUL)
    or at run time (too long), and '' never means "here" or "off"."""
    problem = files.path_problem(value)
    if problem:
        return problem
    if len(os.fsencode(value)) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes, the most a path can have"
    return None


def unit_interval(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "must be one of " + ", ".join(choices)

    return check


def bcm_pin(value: int) -> str | None:
    return None if 0 <= value <= 27 else "must be a BCM GPIO number from 0 to 27"
