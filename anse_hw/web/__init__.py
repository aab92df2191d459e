"""The web adapter: the WebSocket hub that fans events out to clients, the
HTTP routes beside it (dashboard files, /healthz, /metrics) and the control
API with its authentication."""
