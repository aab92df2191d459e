"""Accessibility basics of the dashboard (issue 26): axe-core, vendored under
tests/vendor/axe-core (MPL-2.0, its licence beside it), run in real headless
Chromium on a whole robot, as an operator, on a desktop and on a phone."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES, ROOT, operator_url
from tests.test_dashboard_overview import SCREENS, screen_page  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser

AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"


def violations(page) -> list[str]:
    """axe-core's serious and critical findings, one line each."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document)).violations
            .filter((v) => ['serious', 'critical'].includes(v.impact))
            .map((v) => `${v.id} (${v.impact}): ` +
              v.nodes.map((n) => n.target.join(' ')).join(', '))"""
    )
    return found


@SCREENS
def test_no_serious_accessibility_violations(start_daemon, screen_page):  # noqa: F811
    page = screen_page
    daemon = start_daemon(
        args=(
            "--config",
            str(EXAMPLES / "pi-robot.yaml"),
            "--sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        )
    )
    page.goto(operator_url(daemon))
    page.wait_for_selector("[data-panel='actuator:fan'] .manual button")
    page.wait_for_selector("#overview-list [data-overview='guard:guard']")
    page.wait_for_selector("#daemon-log li")
    assert violations(page) == []
    # Latched: the banner, the overview's latch line, the Reset button.
    page.click("#estop-button")
    page.wait_for_selector("#latch-banner:not([hidden])")
    page.wait_for_selector("#reset-button:not([hidden])")
    assert violations(page) == []
    # While disconnected too: the disabled controls and the warnings.
    daemon.stop()
    page.wait_for_selector("#command-state:not([hidden])")
    assert violations(page) == []
