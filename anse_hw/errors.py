"""What can go wrong, and the exit code each failure means: defined once.

A command-line verb ends with `OK`, `FAILURE` (something at run time did not
work: a device, a file, systemctl) or `USAGE` (the user asked for something
that cannot be: a bad flag or a bad config file).  `ConfigError` is the one
USAGE error; `DriverError` and every other runtime failure are FAILURE.
`Refused` is an operator command the engine will not carry out, with the
HTTP status the control API answers.
"""

from __future__ import annotations

__all__ = ["FAILURE", "OK", "USAGE", "ConfigError", "DriverError", "Failure", "Refused"]

OK, FAILURE, USAGE = 0, 1, 2

#: A file with more problems than this is probably not a config at all.
MAX_PROBLEMS = 30


class ConfigError(Exception):
    """Everything wrong with a config file, one message per line."""

    def __init__(self, problems: list[str]) -> None:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS], f"... and {more} more problems"]
        super().__init__("\n".join(problems))
        self.problems = problems


class DriverError(Exception):
    """A device could not be opened or used; the message is for the user.

    `key` is the config key it is about (("gpio", "mock_state_file")), when
    one is: the message starts with it, and `--check` shows the file and
    line of that key before `reason`, the message without it.
    """

    def __init__(self, reason: str, key: tuple[str, ...] = ()) -> None:
        super().__init__(f"{'.'.join(key)}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class Refused(Exception):
    """An operator command the engine will not carry out; the text says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Failure(Exception):
    """A runtime failure that is not a device's (systemctl, a file system the
    service installer writes to): one line for the user, exit FAILURE."""
