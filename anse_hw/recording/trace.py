"""A recording played as a sim sensor's trace (`profile: trace` with an
anse-hw .mcap file).

The sim reads text traces itself, but a recording is this package's
format: the composition root loads it here and hands the sim plain values,
so no driver imports the recorder (nor mcap).  The recording module is
imported only when a sensor plays one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from anse_hw import files
from anse_hw.errors import DriverError
from anse_hw.model import SensorConfig

__all__ = ["SUFFIX", "recorded_traces", "recorded_values"]

#: The recordings' file suffix; any other trace is text, the sim's to read.
SUFFIX = ".mcap"


def recorded_traces(sensors: Iterable[SensorConfig]) -> dict[str, list[float | None]]:
    """The recorded readings each sim sensor that plays a recording plays, by name."""
    return {
        s.name: recorded_values(Path(s.options["trace"]), s.name)
        for s in sensors
        if s.driver == "sim"
        and s.options.get("profile") == "trace"
        and Path(s.options["trace"]).suffix == SUFFIX
    }


def recorded_values(path: Path, name: str) -> list[float | None]:
    """The readings of sensor `name` (or of the only sensor) in an anse-hw
    recording; DriverError (a run-time failure) when there are none."""
    from anse_hw.recording import reader

    try:
        names = reader.scan(path).sensors
        chosen = name if name in names else (next(iter(names)) if len(names) == 1 else None)
        if chosen is None:
            have = ", ".join(map(repr, sorted(names))) or "none"
            raise DriverError(f"{path} has no sensor {name!r} (it has: {have})")
        values = [r.value for r in reader.readings(path) if r.sensor == chosen and r.fault is None]
    except files.FileProblem as exc:
        raise DriverError(f"trace: {exc}") from None
    if not values:  # a trace with nothing to play would spin forever
        raise DriverError(f"{path} has no readings of {chosen!r}")
    return values
