"""How a driver or a config section declares its YAML keys: `Option` and the
small, pure checks its values pass through (`in_range`, `one_of`, `bcm_pin`,
`a_path`, `host_problem`...).  Every message a check returns ends up after
the key's file and line in `--check`'s output, so it is written for the
robot builder.  The command line reuses the same checks for its flags
(`--port`, `--host`), so a flag and its YAML key refuse the same values."""

from __future__ import annotations

import ipaddress
import os
import re
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


Check = Callable[[Any], str | None]


def allowing(text: str) -> Callable[[Check], Check]:
    """Marks a check with what it allows, in a few words ("1 to 65535"), for
    the configuration reference (docs/configuration.md)."""

    def mark(check: Check) -> Check:
        check.allows = text  # type: ignore[attr-defined]
        return check

    return mark


def _number(value: float) -> str:
    """1048576 as it is written, not 1.04858e+06."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def in_range(low: float, high: float, unit: str = "") -> Callable[[float], str | None]:
    """A check for a number from `low` to `high`, both included.  Every
    number has an upper bound too: a huge value is never what a user meant,
    and some (1e308 MB) overflow where they are used."""

    @allowing(f"{_number(low)} to {_number(high)}{unit}")
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be from {low:g} to {high:g}{unit}"

    return check


#: Linux's PATH_MAX less the terminating NUL: the longest path open() takes.
MAX_PATH_BYTES = 4095


@allowing("a path")
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


@allowing("0 to 1")
def unit_interval(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    @allowing(", ".join(choices))
    def check(value: Any) -> str | None:
        return None if value in choices else "must be one of " + ", ".join(choices)

    return check


@allowing("0 to 27")
def bcm_pin(value: int) -> str | None:
    return None if 0 <= value <= 27 else "must be a BCM GPIO number from 0 to 27"


def seconds(low: float, high: float) -> Callable[[float], str | None]:
    return in_range(low, high, " seconds")


_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@allowing("1-64 of A-Z a-z 0-9 _ - .")
def name_problem(value: str) -> str | None:
    """A sensor, actuator or reflex name: shown on the stream and in topics."""
    return None if _NAME.match(value) else "must be 1-64 letters, digits, '_', '-' or '.'"


@allowing("1 to 65535")
def port_problem(value: int) -> str | None:
    """A port to connect to (mqtt.port, `anse-hw health --port`)."""
    return None if 1 <= value <= 65535 else "must be a TCP port from 1 to 65535"


@allowing("0 to 65535")
def listen_port_problem(value: int) -> str | None:
    """server.port and the daemon's --port: 0 asks the system for a free port,
    which the daemon then prints (tests and several instances on one host)."""
    if 0 <= value <= 65535:
        return None
    return "must be a TCP port from 1 to 65535, or 0 for any free port"


#: A DNS label; `_` too, which RFC 1123 host names lack but container
#: networks use for service names (`mqtt_broker` in a compose file).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


@allowing("an IP address or a host name")
def host_problem(value: str) -> str | None:
    """A host to connect to (mqtt.host): an IP address, or a host name of
    DNS labels.  Anything else fails only when the connection is tried,
    inside a task that no one watches at start."""
    if not value:
        return "is empty; give a host name or an IP address"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value.removesuffix(".")
    if len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return (
        "must be an IP address or a host name: dot-separated parts of 1 to 63 letters, "
        "digits, '-' and '_', at most 253 characters"
    )


@allowing("an IP address or a host name")
def listen_host_problem(value: str) -> str | None:
    """server.host and the daemon's --host: the rule of `host_problem`, with
    a hint for the empty string (which the socket layer reads as "every
    interface", and which looks like a forgotten value)."""
    if not value:
        return "is empty; write 0.0.0.0 (every IPv4 interface) or :: (every interface)"
    return host_problem(value)


@allowing("1 to 1024 characters, no NUL")
def credential_problem(value: str) -> str | None:
    """A broker user name or password: MQTT strings cannot hold NUL."""
    if not value:
        return "is empty"
    if "\0" in value or len(value) > 1024:
        return "must be at most 1024 characters, without NUL"
    return None


@allowing("https://host[:port] entries")
def origins_problem(values: list) -> str | None:
    """Web origins: scheme and host (and port), nothing after."""
    bad = [v for v in values if not isinstance(v, str) or not re.match(r"^https?://[^/]+$", v)]
    return f"entries must look like https://host[:port], got {bad[0]!r}" if bad else None


@allowing("no / + # or NUL")
def topic_part_problem(value: str) -> str | None:
    """One level of an MQTT topic: the wildcards and the separator would
    make it several levels, or a subscription."""
    bad = set(value) & set("+#/\0") or not value
    return "must be non-empty, without / + # or NUL" if bad else None


#: A robot_id names a directory and an MQTT topic level: nothing else fits both.
ROBOT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@allowing("1-64 of A-Z a-z 0-9 _ -")
def ha_id_problem(value: str) -> str | None:
    """The robot in MQTT topics and in Home Assistant's discovery topic, whose
    ids Home Assistant limits to [a-zA-Z0-9_-]: it would drop the robot's
    discovery, and with it every entity, without a word.  Says what would do."""
    if ROBOT_ID.fullmatch(value):
        return None
    suggestion = re.sub(r"[^A-Za-z0-9_-]+", "_", value)[:64].strip("_") or "robot"
    return f"must be 1-64 of A-Z a-z 0-9 _ - (Home Assistant's discovery ids); try {suggestion!r}"


@allowing("1-64 of A-Z a-z 0-9 _ -, not sim or sim-...")
def robot_id_problem(value: Any) -> str | None:
    """`sim` and `sim-…` name the state of runs on fakes, so a real robot
    cannot take them."""
    if not isinstance(value, str) or not ROBOT_ID.fullmatch(value):
        return f"expected 1-64 of A-Z a-z 0-9 _ -, got {value!r}"
    if value == "sim" or value.startswith("sim-"):
        return f"{value!r} is reserved for runs on fakes (--sim)"
    return None
