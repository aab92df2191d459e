"""The daemon's log on the stream (issue 26): an operator's connection gets
the last lines on connect and every new one; a read-only one never does."""

from __future__ import annotations

import json
import urllib.request

from websockets.sync.client import connect

from tests.conftest import fast_sim_config


def session_cookie(daemon) -> str:
    token = (daemon.state / "control-token").read_text().strip()
    request = urllib.request.Request(
        f"http://127.0.0.1:{daemon.port}/api/login",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Set-Cookie"].split(";", 1)[0]


def frames(ws, until, limit: int = 5000) -> list[dict]:
    """Frames until `until(frames)` holds (the sweep changes the actuator
    every few seconds, so a generous count of frames is a deadline)."""
    seen: list[dict] = []
    for _ in range(limit):
        seen.append(json.loads(ws.recv(timeout=60)))
        if until(seen):
            return seen
    raise AssertionError(f"not seen in {limit} frames")


def actuator_changes(seen: list[dict]) -> int:
    return sum(1 for f in seen if f["type"] == "actuator")


def test_an_operator_gets_the_log_and_a_viewer_never_does(start_daemon):
    daemon = start_daemon(fast_sim_config(0, interval=0.05))
    origin = f"http://127.0.0.1:{daemon.port}"
    with connect(
        daemon.url, origin=origin, additional_headers={"Cookie": session_cookie(daemon)}
    ) as ws:
        seen = frames(
            ws,
            lambda s: any(
                f["type"] == "log"
                and "movement" in f["data"]["message"]
                and " by " in f["data"]["message"]
                for f in s
            ),
        )
    logs = [f["data"] for f in seen if f["type"] == "log"]
    # The lines from before it connected came first: the start's own.
    assert any(line["message"].startswith("✓ distance_sensor") for line in logs)
    assert all(line["level"] in ("INFO", "WARNING", "ERROR", "CRITICAL") for line in logs)
    assert all(line["timestamp"].endswith("Z") and "seq" not in line for line in logs)

    with connect(daemon.url, origin=origin) as viewer:  # no session: read-only
        seen = frames(viewer, lambda s: actuator_changes(s) >= 2)
    assert [f for f in seen if f["type"] == "log"] == []
