"""Recording and replay's file side: MCAP files that Foxglove opens.

format.py is what a file holds, recorder.py writes files, reader.py reads
them back as a stream.  What the rest of anse_hw uses is listed below.
"""

from anse_hw.recording.format import MAGIC, MAX_SECONDS, Decision, redacted
from anse_hw.recording.reader import (
    Event,
    Reading,
    RecordingProblem,
    Summary,
    decision,
    decisions,
    indexed,
    readings,
    readings_between,
    scan,
)
from anse_hw.recording.recorder import Recorder

__all__ = [
    "MAGIC",
    "MAX_SECONDS",
    "Decision",
    "Event",
    "Reading",
    "Recorder",
    "RecordingProblem",
    "Summary",
    "decision",
    "decisions",
    "indexed",
    "readings",
    "readings_between",
    "redacted",
    "scan",
]
