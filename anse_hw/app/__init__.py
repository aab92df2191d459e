"""The composition root: the command line, the daemon that wires the core to
its drivers and sinks, and what runs around it (service install, safe stop,
the guardian, logging, systemd notification).

Nothing else imports it, and it exports nothing: its entry point is the
`anse-hw` script (`anse_hw.app.cli:main`, also `python -m anse_hw`).
"""

__all__: list[str] = []
