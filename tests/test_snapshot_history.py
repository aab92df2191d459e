"""What a connecting client gets beyond the seed's snapshot (issue 26): the
last minutes of every sensor, the run it belongs to, and what set the latch."""

from __future__ import annotations

import time

from tests.conftest import fast_sim_config, wait_for
from tests.test_latch import post, token


def snapshot(watch, daemon) -> dict:
    stream = watch(daemon.url)
    stream.close()
    return stream.events[0]["data"]


def test_a_new_client_gets_the_minutes_before_it_connected(start_daemon, watch):
    daemon = start_daemon(fast_sim_config(0, interval=0.05))
    began = time.time() * 1000

    def points() -> list:
        found = snapshot(watch, daemon)["history"]["distance_sensor"]
        return found if len(found) >= 3 else None

    series = wait_for(points, 60, "three seconds of history in the snapshot")
    connected = time.time() * 1000
    times = [t for t, _ in series]
    assert times == sorted(times) and times[0] < connected - 2000
    assert times[0] >= began - 1000  # nothing from before this daemon started
    assert all(0 <= v <= 200 for _, v in series)  # the sim's sweep, in cm


def test_each_start_is_a_new_run(start_daemon, watch):
    config = fast_sim_config(0)
    first = snapshot(watch, start_daemon(config))["run"]
    second = snapshot(watch, start_daemon(config))["run"]
    assert first["id"] != second["id"]
    assert first["started"].endswith("Z") and second["started"] >= first["started"]


def test_the_latch_carries_its_own_cause_source_and_time(start_daemon, watch):
    daemon = start_daemon(fast_sim_config(0, interval=0.05))
    assert snapshot(watch, daemon)["latch"] is None
    stream = watch(daemon.url)
    assert post(daemon.port, "/api/estop", token(daemon))[0] == 200
    latched = wait_for(
        lambda: next(
            (e for e in list(stream.events) if (e["data"].get("latch") or {}).get("cause")), None
        ),
        what="a world model with the latch",
    )["data"]["latch"]
    assert latched["cause"] == "operator_estop" and "127.0.0.1" in latched["source"]
    # Later actuator changes (none move, but the stream goes on) keep the latch's own.
    assert snapshot(watch, daemon)["latch"] == latched
    assert post(daemon.port, "/api/reset", token(daemon))[0] == 200
    wait_for(lambda: snapshot(watch, daemon)["latch"] is None, what="the latch released")
