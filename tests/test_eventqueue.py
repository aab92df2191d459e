"""The bounded queue every sink shares: telemetry goes first, the bound holds."""

import pytest

from anse_hw import events
from anse_hw.eventqueue import EventQueue


def event(kind: str, seq: int) -> dict:
    data = {"sensor_name": "front"} if kind == events.SENSOR else {}
    return events.make(kind, seq, data)


def drain(queue: EventQueue) -> list:
    return [queue.get() for _ in range(len(queue))]


def put(queue: EventQueue, item: dict) -> bool:
    return queue.put(item, events.is_telemetry(item))


def test_a_full_queue_drops_the_oldest_telemetry_and_keeps_reflex_and_actuator_events():
    queue = EventQueue(4)
    reflex, sensor1, actuator, sensor2 = (
        event(events.REFLEX, 1),
        event(events.SENSOR, 2),
        event(events.ACTUATOR, 3),
        event(events.SENSOR, 4),
    )
    for item in (reflex, sensor1, actuator, sensor2):
        assert not put(queue, item)
    newest = event(events.WORLDMODEL, 5)
    assert put(queue, newest)  # full: something went
    assert drain(queue) == [reflex, actuator, sensor2, newest]


def test_with_no_telemetry_left_the_oldest_event_goes_and_the_bound_holds():
    queue = EventQueue(3)
    reflexes = [event(events.REFLEX, n) for n in range(10)]
    dropped = sum(put(queue, r) for r in reflexes)
    assert dropped == 7
    assert drain(queue) == reflexes[-3:]


def test_taking_and_dropping_interleaved_keep_arrival_order_and_the_bound():
    """The telemetry index never points at an item already taken: after any
    mix of puts and gets the queue holds the newest items in order."""
    queue = EventQueue(5)
    kept = []
    for n in range(200):
        kind = (events.SENSOR, events.REFLEX, events.WORLDMODEL)[n % 3]
        put(queue, event(kind, n))
        if n % 4 == 0:
            kept.append(queue.get()["seq"])
        assert len(queue) <= 5
    kept += [e["seq"] for e in drain(queue)]
    assert kept == sorted(kept)
    assert kept[-1] == 199
    # Every reflex event put after the last forced drop of one survives.
    assert {n for n in range(180, 200) if n % 3 == 1} <= set(kept)


def test_an_empty_queue_says_so():
    queue = EventQueue(1)
    assert not queue and len(queue) == 0
    with pytest.raises(IndexError):
        queue.get()
    with pytest.raises(ValueError):
        EventQueue(0)
