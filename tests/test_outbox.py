"""The per-client buffer policy, on frames alone."""

from __future__ import annotations

from anse_hw.web.outbox import Outbox


def frames(box: Outbox) -> list[str]:
    return [frame for _, frame in box.take()]


def test_a_client_that_keeps_up_gets_every_frame_in_order():
    box = Outbox(conflate_after=32)
    pushed = [("sensor", "s1"), ("worldmodel", "w1"), (None, "reflex"), ("worldmodel", "w2")]
    for key, frame in pushed:
        box.push(key, frame)
    assert frames(box) == ["s1", "w1", "reflex", "w2"]
    assert frames(box) == []


def test_a_client_behind_gets_latest_telemetry_and_every_critical_event():
    box = Outbox(conflate_after=4)
    for i in range(100):
        box.push(("sensor", "front"), f"s{i}")
        box.push("worldmodel", f"w{i}")
        if i % 10 == 0:
            box.push(None, f"reflex{i}")
    taken = frames(box)
    assert [f for f in taken if f.startswith("reflex")] == [f"reflex{i}" for i in range(0, 100, 10)]
    assert taken[-2:] == ["s99", "w99"]
    assert len(taken) < 20
    assert box.conflated > 150
    assert not box.overflowed


def test_conflation_is_per_sensor():
    box = Outbox(conflate_after=0)
    box.push(("sensor", "a"), "a1")
    box.push(("sensor", "b"), "b1")
    box.push(("sensor", "a"), "a2")
    assert frames(box) == ["b1", "a2"]


def test_too_many_critical_events_overflow():
    box = Outbox(max_critical=3)
    for i in range(3):
        box.push(None, f"r{i}")
    assert not box.overflowed
    box.push(None, "r3")
    assert box.overflowed
