"""The composition root: the command line, the daemon that wires the core to
its drivers and sinks, and what runs around it (service install, safe stop,
the guardian, logging, systemd notification).  Nothing else imports it."""
