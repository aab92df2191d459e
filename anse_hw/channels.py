"""The channels a robot's data is published on outside the wire stream: the
topics and JSON schemas shared by the recording (MCAP files) and the live
Foxglove view, so a panel set up on one works on the other.

Every raw reading per sensor on `/readings/<name>`, every wire event on
`/events`, and the world model alone on `/worldmodel` (live only: in a
recording it is the `/events` of type worldmodel).
"""

from __future__ import annotations

from anse_hw import events

EVENTS_TOPIC = "/events"
READINGS_TOPIC = "/readings/"
WORLDMODEL_TOPIC = "/worldmodel"

READING_SCHEMA = {
    "title": "anse-hw reading",
    "type": "object",
    "properties": {
        "sensor": {"type": "string"},
        "value": {"type": ["number", "null"]},
        "problem": {"type": ["string", "null"]},
        "fault": {"type": ["string", "null"]},
        "active": {"type": ["boolean", "null"]},
        "arrived": {"type": "number", "description": "monotonic seconds since the start"},
    },
    "required": ["sensor", "value", "arrived"],
}
EVENT_SCHEMA = {
    "title": "anse-hw wire event",
    "type": "object",
    "properties": {
        "type": {"enum": [events.SENSOR, events.WORLDMODEL, events.REFLEX, events.ACTUATOR]},
        "timestamp": {"type": "string"},
        "seq": {"type": "integer"},
        "data": {"type": "object"},
    },
    "required": ["type", "timestamp", "data"],
}
WORLDMODEL_SCHEMA = {
    "title": "anse-hw world model",
    "type": "object",
    "description": "the data of a worldmodel event (docs/protocol.md)",
    "properties": {
        "distance_cm": {"type": ["number", "null"]},
        "safe": {"type": "boolean"},
        "actuator_state": {"type": "string"},
        "last_reflex": {"type": ["string", "null"]},
        "total_events": {"type": "integer"},
        "actuators": {"type": "object", "additionalProperties": {"type": "string"}},
        "sensors": {"type": "object", "description": "by name: value, fresh, stale, ..."},
        "estop_latched": {"type": "boolean"},
        "estop_durable": {"type": "boolean"},
        "last_stop": {"type": ["object", "null"]},
    },
}
