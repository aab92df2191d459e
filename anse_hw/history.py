"""The recent past of every sensor, kept by the daemon for the dashboard.

A page that is reloaded, or a phone that connects for the first time, should
see the last minutes at once instead of a chart that starts empty.  So the
engine feeds every accepted reading in here and the connect snapshot carries
the series (docs/protocol.md, "The snapshot").

Bounded twice: readings are folded into buckets of `RESOLUTION` seconds (the
mean of the readings in it), and only the last `SPAN` seconds of buckets are
kept, so a sensor at 100 Hz costs as much as one at 1 Hz: at most
SPAN / RESOLUTION points per sensor.  A silence the engine noticed (a stale
or faulty sensor) is kept as a gap, so a chart never draws a line across it.

Pure: no lock (the engine calls in under its own), no clock of its own (the
caller passes wall-clock seconds, the time a chart is drawn against).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["RESOLUTION", "SPAN", "History"]

#: Seconds per point, and how many seconds of points are kept.
RESOLUTION = 1.0
SPAN = 15 * 60.0


class _Series:
    """One sensor's points, kept as the wire carries them ([ms, mean or
    None], so a snapshot only copies them), and the bucket still filling."""

    def __init__(self, size: int) -> None:
        self.points: deque[list[float | None]] = deque(maxlen=size)
        self.bucket: float | None = None  # the open bucket's start
        self.total = 0.0
        self.count = 0

    def add(self, value: float, bucket: float) -> None:
        if bucket != self.bucket:
            self._close()
            self.bucket, self.total, self.count = bucket, 0.0, 0
        self.total += value
        self.count += 1

    def gap(self, bucket: float) -> None:
        """A silence: close what is open, then a break (one is enough)."""
        self._close()
        self.bucket, self.count = None, 0
        if self.points and self.points[-1][1] is not None:
            self.points.append(_point(bucket, None))

    def _close(self) -> None:
        if self.bucket is not None and self.count:
            self.points.append(_point(self.bucket, self.total / self.count))

    def since(self, cutoff: float) -> list[list[float | None]]:
        first = round(cutoff * 1000)
        points = [p for p in self.points if p[0] >= first]
        if self.bucket is not None and self.count and self.bucket >= cutoff:
            points.append(_point(self.bucket, self.total / self.count))
        return points


def _point(bucket: float, value: float | None) -> list[float | None]:
    return [round(bucket * 1000), None if value is None else round(value, 2)]


class History:
    def __init__(
        self, names: Iterable[str], resolution: float = RESOLUTION, span: float = SPAN
    ) -> None:
        self.resolution = resolution
        self.span = span
        size = max(1, round(span / resolution)) + 1  # and one gap's worth
        self._series = {name: _Series(size) for name in names}

    def _bucket(self, at: float) -> float:
        return (at // self.resolution) * self.resolution

    def add(self, name: str, value: float, at: float) -> None:
        """A reading of `name` taken at `at` (wall-clock seconds)."""
        self._series[name].add(value, self._bucket(at))

    def gap(self, name: str, at: float) -> None:
        """`name` went silent or faulty at `at`: its line breaks here."""
        self._series[name].gap(self._bucket(at))

    def series(self, now: float) -> dict[str, list[list[float | None]]]:
        """Every sensor's points of the last `span` seconds before `now`, as
        the wire carries them: [milliseconds since the epoch, mean or null]."""
        return {name: s.since(now - self.span) for name, s in self._series.items()}
