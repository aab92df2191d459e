"""anse-hw: the ANSE nervous system on real hardware.

sensor → world model → reflex → actuator → broadcast, with every step streamed
as JSON over WebSocket.
"""

__version__ = "0.1.0"
