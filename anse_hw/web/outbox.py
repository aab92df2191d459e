"""One client's bounded outbound buffer, with conflation (sans-I/O).

Events are pushed as already-encoded frames with a conflation key: telemetry
(`sensor` per sensor name, `worldmodel`) has a key, `reflex` and `actuator`
have none and are never dropped.  While the client keeps up, every frame goes
out in order.  Once it falls `conflate_after` frames behind, a new telemetry
frame replaces the older unsent one with the same key.  A client that falls
`max_critical` reflex and actuator events behind cannot be helped and is
marked `overflowed`.

It is not an `eventqueue.EventQueue`, the sinks' queue: a client gets the
newest value of each telemetry key (a newer frame replaces the older one),
not whatever telemetry is left after the oldest was dropped, and a client
too far behind on reflex events is dropped whole rather than trimmed.

All operations are O(1) per frame: 1000 clients × 100 readings/s must not
turn publishing into the bottleneck.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

#: Frames a client may be behind before its telemetry is conflated.
CONFLATE_AFTER = 32


class Outbox:
    def __init__(self, conflate_after: int = CONFLATE_AFTER, max_critical: int = 256) -> None:
        self.conflate_after = conflate_after
        self.max_critical = max_critical
        self._frames: OrderedDict[int, tuple[Hashable | None, int, str]] = OrderedDict()
        self._latest: dict[Hashable, int] = {}
        self._next = 0
        self.critical = 0
        self.conflated = 0
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def behind(self) -> bool:
        """The client is not keeping up: its telemetry is being conflated."""
        return len(self._frames) >= CONFLATE_AFTER

    def push(self, key: Hashable | None, frame: str, seq: int = 0) -> None:
        if key is None:
            self.critical += 1
            if self.critical > self.max_critical:
                self.overflowed = True
        elif len(self._frames) >= self.conflate_after and key in self._latest:
            del self._frames[self._latest[key]]
            self.conflated += 1
        slot = self._next
        self._next += 1
        self._frames[slot] = (key, seq, frame)
        if key is not None:
            self._latest[key] = slot

    def extend(self, items: list[tuple[Hashable | None, str, int]], after: int) -> None:
        """push() each (key, frame, seq) newer than `after`: one call per batch."""
        for key, frame, seq in items:
            if seq > after:
                self.push(key, frame, seq)

    def take(self) -> list[tuple[int, str]]:
        """Everything pending as (seq, frame), oldest first; the buffer is empty afterwards."""
        frames = [(seq, frame) for _, seq, frame in self._frames.values()]
        self._frames.clear()
        self._latest.clear()
        self.critical = 0
        return frames
