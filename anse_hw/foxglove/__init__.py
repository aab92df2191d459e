"""The live Foxglove view: the recording's channels served over Foxglove's
WebSocket protocol by the official foxglove-sdk (the optional `foxglove`
extra), for a Foxglove app that connects to ws://HOST:8765.  What the rest
of anse_hw uses is listed below; the SDK is imported only when the view
starts.
"""

from anse_hw.foxglove.live import LiveView

__all__ = ["LiveView"]
