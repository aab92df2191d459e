"""Checking the shape of a parsed YAML fragment, for the pure parsers.

`filters` and `conditions` parse their part of a reflex config without
knowing the file it came from, so they raise a `SpecError` that carries the
key path and a one-line reason; the config layer turns it into its
'robot.yaml:7: sensors[0].filters[1].median: ...' message.  The checks here
are the ones both parsers need, so the two say the same thing the same way.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

__all__ = ["Path", "SpecError", "mapping", "number", "shown", "unknown_key"]

#: A key path into the parsed YAML: ("reflexes", 2, "when", "all", 0, "below").
Path = tuple[str | int, ...]


class SpecError(ValueError):
    """A bad config fragment.  `str()` is the one-line reason, without the
    path (the config layer places it, with the file and line); `path` says
    which key, as precisely as the parser can."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(reason)


def shown(value: object) -> str:
    """A value as a message quotes it, cut short: a message stays one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def number(raw: object, path: Path, error: type[SpecError] = SpecError) -> float:
    """A finite number.  YAML's `true` is a Python int, `.nan`/`.inf` are
    floats and a 400-digit integer is too big for one: none is a threshold
    anyone meant, so all are refused here.  `error` is the parser's own
    SpecError subclass."""
    if not isinstance(raw, bool) and isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:
            value = math.inf
        if math.isfinite(value):
            return value
    raise error(path, f"expected a number, got {shown(raw)}")


def mapping(raw: object, path: Path, example: str, error: type[SpecError] = SpecError) -> dict:
    """A mapping with string keys; `example` shows the user what one looks like."""
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise error(path, f"expected a mapping like {example}, got {shown(raw)}")
    return raw


def unknown_key(key: str, known: Iterable[str], what: str = "key") -> str:
    """'unknown filter 'medain'; did you mean 'median'?', or the list of
    choices when nothing is close."""
    choices = list(known)
    near = difflib.get_close_matches(key, choices, n=1)
    tip = f"did you mean '{near[0]}'?" if near else f"expected one of: {', '.join(choices)}"
    return f"unknown {what} {shown(key)}; {tip}"
