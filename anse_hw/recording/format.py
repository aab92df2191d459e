"""The recording format: what an anse-hw .mcap file holds, shared by the
recorder (writing) and the reader (replay, `recordings`).

Every raw reading per sensor as it arrived (its value, or the reason there
was none, and faults of the device) on `/readings/<name>`, every wire event
on `/events`, both JSON with the JSON schemas of anse_hw.channels (the live
Foxglove view's too), and the config the daemon ran with in a metadata
record `anse-hw`, its secrets redacted.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from anse_hw.config import yamlfile

CONFIG_METADATA, END_METADATA = "anse-hw", "anse-hw-end"
#: The key, in the CONFIG_METADATA record, of the clock mapping: a message's
#: log_time (Unix-epoch ns) is this plus its `arrived` seconds.  Files from
#: before it have none: their log_time counts from the daemon's start.
CLOCK_ORIGIN = "clock_origin_ns"
ENDINGS = ("shutdown", "rotated")
#: Keys whose value is a secret, wherever they are in the config: any key
#: ending in password, token or secret (`password`, `control_token`).  A key
#: naming a file (`password_file`) holds a path, which replay may still need.
SECRET_KEY = re.compile(r"(?:password|token|secret)$", re.IGNORECASE)
REDACTED = "<redacted>"
#: The names the recorder gives its files: the second it started, and a
#: counter for a second file in the same second.  Only these are pruned.
FILE_NAME = re.compile(r"anse-(\d{8}-\d{6})(?:-(\d{1,9}))?\.mcap")

# -- reading files back: what the reader takes --------------------------------

MAGIC = b"\x89MCAP0\r\n"
#: The largest record the reader takes: far above anything anse-hw writes (a
#: reading is ~150 bytes, the config at most 32 KiB), small enough that a
#: length field with a flipped bit cannot make it allocate gigabytes.
MAX_RECORD = 64 * 1024 * 1024
#: No daemon runs this long (317 years): a larger time is damage.
MAX_SECONDS = 1e10
#: ("reflex", name, condition, triggered) or ("actuator", name, state).
Decision = tuple[Any, ...]


def redacted(config_yaml: str) -> str:
    """The config as the recording stores it: the same data with the value of
    every secret key (SECRET_KEY) replaced by REDACTED, dumped again as YAML.
    Comments are not kept (one may hold a secret too); anchors are, so the
    stored text stays as small as the original.  A text that does not parse
    (never one the daemon started from) is not stored at all: what in it is
    secret cannot be told."""
    try:
        data, _ = yamlfile.load(config_yaml)
    except yamlfile.YamlProblem:
        return ""
    return yaml.safe_dump(_without_secrets(data, {}), sort_keys=False, allow_unicode=True)


def _without_secrets(data: Any, done: dict[int, Any]) -> Any:
    """A copy of `data` with secret values replaced; `done` maps each mapping
    or list already copied to its copy, so a YAML alias stays one object."""
    if not isinstance(data, dict | list):
        return data
    if id(data) in done:
        return done[id(data)]
    if isinstance(data, list):
        items: list[Any] = []
        done[id(data)] = items
        items.extend(_without_secrets(item, done) for item in data)
        return items
    mapping: dict[Any, Any] = {}
    done[id(data)] = mapping
    for key, value in data.items():
        secret = isinstance(key, str) and SECRET_KEY.search(key)
        mapping[key] = REDACTED if secret and value is not None else _without_secrets(value, done)
    return mapping
