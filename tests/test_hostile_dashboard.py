"""The dashboard's ?ws= in real Chromium, with two robots: a page logged in to
one robot that shows another robot's stream must not keep its E-STOP and
send it there, and every page says which robot its E-STOP reaches."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fast_sim_config, http_get, operator_url, text

pytestmark = pytest.mark.browser


def latched(port: int) -> bool:
    return json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])["estop_latched"]


def test_a_stream_from_another_robot_is_watched_never_commanded(start_daemon, page):
    a = start_daemon(fast_sim_config(0, interval=0.1))
    # Robot B would take commands from A's dashboard page (an allowed origin),
    # and the browser is logged in to both: only the page can tell them apart.
    b_config = fast_sim_config(0, interval=0.1).replace(
        "port: 0}", f"port: 0, allowed_origins: ['http://localhost:{a.port}']}}"
    )
    b = start_daemon(b_config)
    page.goto(operator_url(b))
    page.wait_for_selector("#operator[data-operator=true]")
    assert text(page, "#estop-target") == f"→ 127.0.0.1:{b.port}"
    page.goto(operator_url(a).replace("127.0.0.1", "localhost"))
    page.wait_for_selector("#operator[data-operator=true]")
    assert text(page, "#estop-target") == f"→ localhost:{a.port}"

    page.goto(f"http://localhost:{a.port}/?ws=ws://127.0.0.1:{b.port}/")
    page.wait_for_selector("#connection[data-state=connected]")
    page.wait_for_selector("[data-panel='sensor:distance_sensor']")
    assert page.is_disabled("#estop-button")
    assert text(page, "#operator-text") == "view only"
    target = text(page, "#estop-target")
    assert target == f"watching 127.0.0.1:{b.port}: view only here", target
    assert f"127.0.0.1:{b.port}" in text(page, "#operator-message")
    assert page.locator("[data-panel='actuator:movement'] .manual").is_hidden()
    seen = int(text(page, "#stat-events"))
    page.evaluate("document.getElementById('estop-button').click()")
    # B's stream flows on past the click: a command sent with it would be in.
    page.wait_for_function(
        f"() => Number(document.getElementById('stat-events').textContent) >= {seen + 10}"
    )
    assert not latched(b.port) and not latched(a.port)
    assert page.errors == []


def test_the_own_stream_named_with_ws_keeps_the_e_stop(start_daemon, page):
    a = start_daemon(fast_sim_config(0, interval=0.1))
    page.goto(operator_url(a))
    page.wait_for_selector("#operator[data-operator=true]")
    page.goto(f"http://127.0.0.1:{a.port}/?ws=ws://127.0.0.1:{a.port}/ws")
    page.wait_for_selector("#connection[data-state=connected]")
    assert text(page, "#estop-target") == f"→ 127.0.0.1:{a.port}"
    assert f"127.0.0.1:{a.port}" in page.get_attribute("#estop-button", "title")
    page.click("#estop-button")
    page.wait_for_selector("#latch-banner:not([hidden])")
    assert latched(a.port)
    assert page.errors == []


def test_a_ws_that_is_not_a_url_is_said_so_and_commands_nothing(start_daemon, page):
    a = start_daemon(fast_sim_config(0, interval=0.1))
    page.goto(operator_url(a))
    page.wait_for_selector("#operator[data-operator=true]")
    page.goto(f"http://127.0.0.1:{a.port}/?ws=javascript:alert(1)")
    page.wait_for_selector("#connection[data-state=disconnected]")
    assert "bad stream address" in text(page, "#connection-text")
    assert page.is_disabled("#estop-button")
    assert page.errors == []
