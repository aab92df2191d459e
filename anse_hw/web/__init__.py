"""The web adapter: the WebSocket hub that fans events out to clients, the
HTTP routes beside it (dashboard files, /healthz, /metrics) and the control
API with its authentication.

hub.py (fan-out, connections), http.py (routing, static files, health,
metrics), api.py (the control API), auth.py (token, sessions, the E-stop
latch's file), httpbody.py (the request head and body before websockets),
wsfast.py (all that is used of websockets beyond its documented API),
outbox.py (a slow client's conflating buffer), exposition.py (the /metrics
text format), logfeed.py (the daemon's log for operators' dashboards).
The composition root uses what `__all__` lists.
"""

from anse_hw.web.api import ControlApi
from anse_hw.web.auth import TOKEN_FILE, Gate, Latch, load_token, operator_hint
from anse_hw.web.hub import Hub
from anse_hw.web.logfeed import LogFeed

__all__ = [
    "TOKEN_FILE",
    "ControlApi",
    "Gate",
    "Hub",
    "Latch",
    "LogFeed",
    "load_token",
    "operator_hint",
]
