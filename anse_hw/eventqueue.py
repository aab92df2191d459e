"""One bounded queue for every sink that falls behind the robot.

A sink (the MQTT bridge, the recorder) takes events faster than it can pass
them on whenever its far end is slow: a broker that is away, a worn SD card.
Its queue must stay bounded, and what it gives up first is telemetry (a
sensor reading or world model, of which a newer one follows at once), never a
reflex or actuator event while any telemetry is left to drop.  Only a queue
holding nothing but such events loses its oldest one, so the bound holds
whatever happens.

Every operation is O(1): the items sit in arrival order, and the telemetry
among them is indexed in a second FIFO, so dropping the oldest telemetry does
not scan the queue (at 20 000 items a scan per event would cost the sink more
than the writing it is waiting for).  The core, standard library only.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, TypeVar

__all__ = ["EventQueue"]

T = TypeVar("T")


class EventQueue(Generic[T]):
    """A FIFO of at most `limit` items that drops the oldest telemetry first."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("an event queue holds at least one item")
        self.limit = limit
        self._items: OrderedDict[int, T] = OrderedDict()
        #: The slots of the telemetry among `_items`, oldest first.
        self._telemetry: deque[int] = deque()
        self._next = 0

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def put(self, item: T, telemetry: bool) -> bool:
        """Append `item`; True if the queue was full and an older item was
        dropped to make room (the caller counts its losses)."""
        dropped = len(self._items) >= self.limit
        if dropped:
            self._drop_one()
        slot = self._next
        self._next += 1
        self._items[slot] = item
        if telemetry:
            self._telemetry.append(slot)
        return dropped

    def get(self) -> T:
        """The oldest item, removed; IndexError when empty."""
        if not self._items:
            raise IndexError("get from an empty event queue")
        slot, item = self._items.popitem(last=False)
        # The oldest item, when it is telemetry, is the oldest telemetry too.
        if self._telemetry and self._telemetry[0] == slot:
            self._telemetry.popleft()
        return item

    def clear(self) -> None:
        self._items.clear()
        self._telemetry.clear()

    def _drop_one(self) -> None:
        if self._telemetry:
            del self._items[self._telemetry.popleft()]
        else:
            self.get()
