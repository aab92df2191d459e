"""The dashboard's drive pad in headless Chromium, against the daemon with a
two-wheel base on the mock pin factory: hold → the wheels turn, release →
they stop, and closing the tab stops them within the hold time."""

from __future__ import annotations

import time

from tests.conftest import GPIO_BASE, open_page, operator_url, wait_for
from tests.test_drive_e2e import duty

HOLD = 2.0  # server.heartbeat: the most a lost tab may keep the base moving


def pad_config(pins) -> str:
    return f"""
server: {{host: 127.0.0.1, port: 0, heartbeat: {HOLD}}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: front, driver: sim, interval: 0.1, profile: constant, value: 80}}
actuators:
{GPIO_BASE}
    stop_mode: coast
reflexes:
  - {{name: guard, sensor: front, below: 15, actuator: base, command: stop}}
"""


def centre_offset(page, up: float, left: float) -> tuple[float, float]:
    """The point `up` and `left` of the pad's centre, in halves of its size."""
    box = page.locator("[data-panel='actuator:base'] .drivepad").bounding_box()
    half = box["width"] / 2
    return box["x"] + half - left * half, box["y"] + box["height"] / 2 - up * half


def hold_pad(page, up: float, left: float) -> None:
    """Press the pad and drag from its centre: `up` and `left` as fractions
    of half its size (1: the edge)."""
    page.mouse.move(*centre_offset(page, 0.0, 0.0))
    page.mouse.down()
    page.mouse.move(*centre_offset(page, up, left), steps=4)


def test_hold_drives_release_stops_and_a_closed_tab_stops_within_the_hold_time(
    start_daemon, watch, browser, tmp_path
):
    pins = tmp_path / "pins.json"
    daemon = start_daemon(pad_config(pins))
    stream = watch(daemon.url)
    page = open_page(browser)
    page.goto(operator_url(daemon))
    page.wait_for_selector("#operator[data-operator=true]")
    page.wait_for_selector("[data-panel='actuator:base'] .drivepad")
    hold_pad(page, up=0.5, left=0.0)
    wait_for(lambda: duty(pins, "left") > 0 and duty(pins, "right") > 0, what="wheels turn")
    page.wait_for_selector("[data-panel='actuator:base'] .state-badge[data-state=MOVING]")
    page.mouse.move(*centre_offset(page, up=0.5, left=0.5), steps=2)  # a left curve
    wait_for(lambda: duty(pins, "right") > duty(pins, "left"), what="the right wheel faster")
    page.mouse.up()
    wait_for(lambda: duty(pins, "left") == 0 and duty(pins, "right") == 0, what="stopped")
    wait_for(lambda: operator_stops(stream), what="the release's stop on the stream")
    assert page.errors == []

    hold_pad(page, up=1.0, left=0.0)
    wait_for(lambda: duty(pins, "left") > 0, what="wheels turn again")
    before = len(operator_stops(stream))
    closed = time.monotonic()
    page.context.close()  # the tab goes: its last word, if any, or the missing heartbeats
    wait_for(lambda: duty(pins, "left") == 0 and duty(pins, "right") == 0, what="stopped")
    # The issue's own demand: stopped within the hold time (plus the monitor's
    # tick and the mock state file's write, well under a second).
    assert time.monotonic() - closed < HOLD + 1.0
    # Chromium may get the pad's `stop` out as the page goes; if not, the
    # heartbeats' lapse stops it.  Either way the operator's command, not a guard.
    wait_for(lambda: len(operator_stops(stream)) > before, what="the stop on the stream")


def operator_stops(stream) -> list[str]:
    """The operator's stops: the pad's own, or a lapse for want of heartbeats."""
    return [
        e["data"]["condition"]
        for e in stream.of_type("reflex")
        if e["data"]["reflex_name"] == "operator_command"
        and (e["data"]["condition"].startswith("stop") or "no heartbeat" in e["data"]["condition"])
    ]
