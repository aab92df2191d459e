"""The wire contract (docs/protocol.md): one JSON object per event.

Events are plain dicts built here and nowhere else, so the key names and JSON
types of the seed document live in one place.  `seq` is our additive key: a
per-daemon counter that lets clients and tests see order and gaps.
"""

from __future__ import annotations

import json
import time
from typing import Any

SENSOR = "sensor"
WORLDMODEL = "worldmodel"
REFLEX = "reflex"
ACTUATOR = "actuator"


#: The formatted second last used: every event in the same second reuses it
#: (strftime was a visible share of the cost of a reading).  One tuple, replaced
#: whole, so threads never see half of an update.
_second: tuple[int, str] = (-1, "")


def timestamp() -> str:
    """UTC ISO-8601 with milliseconds and a `Z`, e.g. 2026-02-14T12:34:56.789Z."""
    global _second
    seconds, fraction = divmod(time.time_ns() // 1_000_000, 1000)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)))
    return f"{_second[1]}{fraction:03d}Z"


def make(event_type: str, seq: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": timestamp(), "seq": seq, "data": data}


def sensor_data(name: str, value: float, sensor_type: str, unit: str) -> dict[str, Any]:
    return {"sensor_name": name, "sensor_type": sensor_type, "value": round(value, 2), "unit": unit}


def reflex_data(name: str, condition: str, triggered: bool = True, **extra: Any) -> dict[str, Any]:
    return {"reflex_name": name, "condition": condition, "triggered": triggered, **extra}


def actuator_data(name: str, state: str, actuator_type: str, **extra: Any) -> dict[str, Any]:
    """`extra`: a drive's `linear` and `angular` (docs/protocol.md)."""
    return {"actuator_name": name, "actuator_type": actuator_type, "state": state, **extra}


def is_telemetry(event: dict[str, Any]) -> bool:
    """A sensor reading or world model: a newer one follows at once, so a sink
    that falls behind may drop or conflate it.  Reflex and actuator events
    explain what the robot did and are kept."""
    return event["type"] in _TELEMETRY


_TELEMETRY = frozenset((SENSOR, WORLDMODEL))


def encode(event: dict[str, Any]) -> str:
    """Serialise one event; NaN and Infinity are refused rather than sent."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False)
