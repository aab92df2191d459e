"""The dashboard in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal

import pytest

from tests.conftest import (
    KINDS,
    ROOT,
    fast_sim_config,
    http_get,
    operator_url,
    text,
)

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "docs" / "dashboard.png"


def test_dashboard_served_by_the_daemon_shows_the_live_loop(start_daemon, page, tmp_path):
    port = start_daemon(fast_sim_config(0, interval=0.1)).port
    page.goto(f"http://127.0.0.1:{port}/")

    page.wait_for_selector("#connection[data-state=connected]")
    assert f"ws://127.0.0.1:{port}/" in text(page, "#connection-text")
    for panel in ("sensor:distance_sensor", "actuator:movement", "worldmodel", "reflexes"):
        page.wait_for_selector(f"[data-panel='{panel}']")
    assert page.locator("#log-panel").is_visible()

    sensor = "[data-panel='sensor:distance_sensor'] .value"
    first = text(page, sensor)
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).textContent !== old", arg=[sensor, first]
    )

    history = "[data-panel='actuator:movement'] .history li"
    page.wait_for_selector(f"{history}[data-state=STOPPED]")
    page.wait_for_selector(f"{history}[data-state=MOVING]")
    assert page.locator("#log li[data-type=actuator]", has_text="STOPPED").count() >= 1
    assert page.locator("#log li[data-type=actuator]", has_text="MOVING").count() >= 1
    assert page.locator("#log li[data-type=reflex]", has_text="proximity_safeguard").count() >= 1

    badge = page.locator("[data-panel='actuator:movement'] .state-badge")
    assert badge.inner_text() in ("MOVING", "STOPPED")
    assert int(text(page, "#stat-events")) > 10
    assert "proximity_safeguard" in text(page, "[data-panel='reflexes'] .active-reflexes")
    assert text(page, "[data-panel='worldmodel'] .safety") in ("SAFE", "DANGER")
    trend = "[data-panel='worldmodel'] .trend"
    page.wait_for_selector(f"{trend}[data-trend=CLOSER]")
    page.wait_for_selector(f"{trend}[data-trend=FARTHER]")

    # The log filter and pause.
    page.click("[data-filter=actuator]")
    page.wait_for_function("""() => [...document.querySelectorAll('#log li')]
        .every(li => li.dataset.type === 'actuator')""")
    page.click("#pause-button")
    page.wait_for_selector("#log-paused:not([hidden])")
    page.wait_for_function("() => Number(document.querySelector('#log-missed').textContent) > 0")
    page.click("#pause-button")
    page.click("[data-filter=all]")

    page.wait_for_function(f'document.querySelectorAll("{history}").length >= 5')
    shot = tmp_path / "dashboard.png"
    # A full-page capture scrolls, which splits a sticky bar: pin it for the picture.
    page.add_style_tag(content=".topbar { position: static; }")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("ANSE_HW_UPDATE_SCREENSHOT"):
        shutil.copy(shot, SCREENSHOT)
    assert page.errors == []


def test_dashboard_reconnects_after_a_daemon_restart(start_daemon, page):
    daemon = start_daemon(fast_sim_config(0, interval=0.1))
    port = daemon.port
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector("#connection[data-state=connected]")
    page.wait_for_selector("[data-panel='sensor:distance_sensor']")

    daemon.stop()
    page.wait_for_selector("#connection[data-state=reconnecting]")
    assert "reconnecting in" in text(page, "#connection-text")

    events_before = int(text(page, "#stat-events"))
    start_daemon(fast_sim_config(port, interval=0.1))  # where the page reconnects
    page.wait_for_selector("#connection[data-state=connected]")
    page.wait_for_function(
        "n => Number(document.querySelector('#stat-events').textContent) > n + 5", arg=events_before
    )
    # Reconnection errors are the browser reporting refused connections, which
    # is the expected part of this test; nothing else may go wrong.
    assert [
        e
        for e in page.errors
        if "ERR_CONNECTION_REFUSED" not in e and "WebSocket connection" not in e
    ] == []


def test_stale_sensor_is_shown_and_the_quiet_stream_is_flagged(start_daemon, page):
    port = start_daemon(
        fast_sim_config(
            0,
            interval=0.1,
            extra_sensor=", profile: script, values: [50, 40, 30], repeat: false, max_age: 0.5",
        )
    ).port
    page.goto(f"http://127.0.0.1:{port}/")
    badge = "[data-panel='sensor:distance_sensor'] .fault-badge"
    page.wait_for_selector(f"{badge}:not([hidden])")
    assert "STALE" in text(page, badge)
    assert text(page, "[data-panel='worldmodel'] .safety") == "DANGER"
    page.wait_for_selector("#quiet-warning:not([hidden])")
    assert "No events" in text(page, "#quiet-warning")
    # A page that loads once the sensor is stale (a busy machine) gets 503 from
    # its /healthz probe, as it should; Chromium logs that.  Nothing else.
    assert [e for e in page.errors if "status of 503" not in e] == []


def test_seed_way_static_server_with_ws_parameter(start_daemon, static_server, page):
    port = start_daemon(fast_sim_config(0, interval=0.1)).port
    web = static_server(ROOT / "anse_hw" / "web" / "dashboard").port
    page.goto(f"http://127.0.0.1:{web}/?ws=ws://127.0.0.1:{port}")
    page.wait_for_selector("#connection[data-state=connected]")
    page.wait_for_selector("[data-panel='sensor:distance_sensor']")
    # http.server answers /healthz with 404: that console line is the probe.
    assert [e for e in page.errors if "404" not in e] == []


def test_phone_sized_screen_keeps_the_motor_state_readable(start_daemon, browser):
    port = start_daemon(fast_sim_config(0, interval=0.1)).port
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/")
    badge = page.locator("[data-panel='actuator:movement'] .state-badge")
    badge.wait_for()
    page.wait_for_function("""() => ['MOVING', 'STOPPED'].includes(
        document.querySelector("[data-panel='actuator:movement'] .state-badge").textContent)""")
    box = badge.bounding_box()
    assert box["width"] <= 390 and box["height"] >= 60
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The E-stop stays in reach at the top of the screen, even scrolled down.
    page.mouse.wheel(0, 2000)
    page.wait_for_function("() => window.scrollY > 0")
    estop = page.locator("#estop-button").bounding_box()
    assert estop["y"] >= 0 and estop["y"] + estop["height"] <= 844 and estop["height"] >= 44
    context.close()


def test_each_kind_is_drawn_in_its_own_unit(start_daemon, page, tmp_path):
    port = start_daemon(KINDS.format(port=0)).port
    page.goto(f"http://127.0.0.1:{port}/")
    temp = "[data-panel='sensor:driver_temp']"
    for panel, unit in (("driver_temp", "°C"), ("air", "%"), ("front", "cm")):
        page.wait_for_function(
            "([sel, unit]) => document.querySelector(sel)?.textContent.endsWith(unit)",
            arg=[f"[data-panel='sensor:{panel}'] .value", unit],
        )
    assert text(page, f"{temp} .kind") == "temperature · °C"
    assert text(page, f"{temp} .max").endswith("°C")
    # The thresholds drawn on the temperature chart come from the reflexes.
    lines = page.evaluate(
        "() => window.dashboard.sensors.get('driver_temp').thresholds.map(l => l.label)"
    )
    assert sorted(lines) == ["off fan < 40 °C", "on fan > 45 °C"]

    binary = "[data-panel='sensor:bumper']"
    page.wait_for_selector(f"{binary} .binary-badge[data-state=ACTIVE]")
    page.wait_for_selector(f"{binary} .binary-badge[data-state=INACTIVE]")
    page.wait_for_function(
        f'() => Number(document.querySelector("{binary} .activations").textContent) >= 2'
    )
    assert page.locator(f"{binary} canvas").count() == 0, "a badge, not a chart"

    fan = "[data-panel='actuator:fan']"
    page.wait_for_selector(f"{fan} .history li[data-state=ON]")
    page.wait_for_selector(f"{fan} .history li[data-state=OFF]")
    assert text(page, f"{fan} .kind") == "output"
    assert page.locator("#log li[data-type=sensor]", has_text="°C").count() >= 1
    page.screenshot(path=str(tmp_path / "kinds.png"), full_page=True)
    assert page.errors == []


def test_operator_logs_in_with_the_printed_url_stops_and_resets(start_daemon, page):
    # A clear road: the motor runs until the operator stops it.  (In the sweep
    # it was already stopped by a reflex one click in eight, and the banner
    # rightly named that reflex as what stopped it.)
    daemon = start_daemon(
        fast_sim_config(0, interval=0.1, extra_sensor=", profile: constant, value: 50")
    )
    port = daemon.port
    url = operator_url(daemon)
    assert url.startswith(f"http://127.0.0.1:{port}/?token=")
    page.goto(url)
    page.wait_for_selector("#operator[data-operator=true]")
    assert "token=" not in page.url, "the token leaves the address bar"
    page.wait_for_selector("#connection[data-state=connected]")
    page.wait_for_selector("[data-panel='actuator:movement'] .manual button")
    page.wait_for_selector("[data-panel='actuator:movement'] .state-badge[data-state=MOVING]")
    page.click("#estop-button")
    page.wait_for_selector("#latch-banner:not([hidden])")
    assert "E-STOP LATCHED" in text(page, "#latch-banner")
    assert "operator_estop" in text(page, "#latch-banner")
    assert text(page, "#operator-text") == "LATCHED", "the top bar says so when scrolled"
    page.wait_for_selector("[data-panel='actuator:movement'] .state-badge[data-state=STOPPED]")
    assert json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])["estop_latched"] is True
    page.click("#reset-button")
    page.wait_for_selector("#latch-banner", state="hidden")
    assert text(page, "#operator-text") == "operator"
    # The next clear reading moves the motor again, on its own reflex.
    page.wait_for_selector("[data-panel='actuator:movement'] .state-badge[data-state=MOVING]")
    assert page.errors == []


EVIL_PAGE = """<!doctype html><script>
window.results = [];
fetch('http://127.0.0.1:{port}/api/estop',
      {{method: 'POST', credentials: 'include', mode: 'no-cors'}})
  .then(() => window.results.push('fetch sent'), () => window.results.push('fetch failed'));
const ws = new WebSocket('ws://127.0.0.1:{port}/');
ws.onmessage = (m) => {{
  const e = JSON.parse(m.data);
  if (e.type === 'reply') window.results.push('reply ' + e.data.status);
  else if (e.type === 'worldmodel' && !window.sent) {{
    window.sent = true; ws.send(JSON.stringify({{action: 'estop'}}));
  }}
}};
</script>"""


def test_a_page_on_another_origin_cannot_command(start_daemon, static_server, page, tmp_path):
    """Same host, another port: the browser sends the operator's cookie along
    (cookies ignore ports), so the daemon's Origin check is what refuses it."""
    daemon = start_daemon(fast_sim_config(0, interval=0.1))
    port = daemon.port
    page.goto(operator_url(daemon))
    page.wait_for_selector("#operator[data-operator=true]")
    site = tmp_path / "evil"
    site.mkdir()
    (site / "evil.html").write_text(EVIL_PAGE.format(port=port))
    evil_port = static_server(site).port
    page.goto(f"http://127.0.0.1:{evil_port}/evil.html")
    page.wait_for_function("() => window.results.length >= 2")
    results = page.evaluate("window.results")
    assert "reply 401" in results, results
    assert json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])["estop_latched"] is False
    assert "commands from http://127.0.0.1:" in daemon.log(), "the POST was refused: 403"


#: The SAFE badge's green (style.css --ok).
OK_GREEN = "rgb(62, 207, 142)"

#: The chart's shading for "no data" (drawSeries' gapFrom), unpremultiplied.
GAP_SHADE = (138, 148, 166)

CHART_PIXEL = """(sel) => {
  const canvas = document.querySelector(sel);
  const x = canvas.width - 3, y = Math.floor(canvas.height / 4);
  return Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data);
}"""


def test_when_the_daemon_goes_away_values_are_last_known_and_nothing_is_green(
    start_daemon, page, tmp_path
):
    daemon = start_daemon(fast_sim_config(0, interval=0.1))
    port = daemon.port
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector(".safety[data-safe=true]")
    panels = ("sensor:distance_sensor", "actuator:movement", "worldmodel")
    for panel in panels:
        assert page.locator(f"[data-panel='{panel}'] .last-known-badge").is_hidden()

    daemon.signal(signal.SIGTERM)
    page.wait_for_selector("#connection[data-state=reconnecting]")
    for panel in panels:
        badge = page.locator(f"[data-panel='{panel}'] .last-known-badge")
        badge.wait_for(state="visible")
        assert re.fullmatch(r"last known · \d+s ago", badge.inner_text())
    # The world model's badge and the overview's: neither green.
    for safety in page.locator(".safety").all():
        assert safety.get_attribute("data-safe") == "unknown"
        assert safety.inner_text().startswith(("SAFE", "DANGER"))
        assert safety.evaluate("n => getComputedStyle(n).backgroundColor") != OK_GREEN
    # The age goes up, and the chart shades the time with no data.
    age = "[data-panel='worldmodel'] .last-known-badge"
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).textContent !== old",
        arg=[age, page.locator(age).inner_text()],
    )
    r, g, b, a = page.evaluate(CHART_PIXEL, "[data-panel='sensor:distance_sensor'] canvas.chart")
    assert a > 0 and all(abs(c - s) <= 12 for c, s in zip((r, g, b), GAP_SHADE, strict=True))

    # Back again, where the page reconnects: live values, no marks.
    start_daemon(fast_sim_config(port, interval=0.1))
    page.wait_for_selector("#connection[data-state=connected]")
    for panel in panels:
        page.locator(f"[data-panel='{panel}'] .last-known-badge").wait_for(state="hidden")
    assert page.locator(".world-panel .safety").get_attribute("data-safe") in ("true", "false")
    # Chromium logs each refused reconnect attempt; nothing else may appear.
    assert [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e] == []
