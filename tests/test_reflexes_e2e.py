"""Reflexes for a real robot (issue 22) through the daemon as a process: the
stop-delay budget in --check, spikes filtered out of a real run, and replay
--verify reproducing filtered, compound decisions (and catching an edited one)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from anse_hw import recording
from tests.conftest import run_cli, text, wait_for, write_config
from tests.test_recording import anse, one_file, stop_made_a_move

GUARDED = """
sensors:
  - name: front
    driver: sim
    interval: 0.06
    filters: [{median: 3}, {max_jump: 80}, {ema: 0.5}, {calibrate: {scale: 1.0, offset: -1.5}}]
actuators:
  - {name: left_motor, driver: sim}
  - {name: right_motor, driver: sim}
reflexes:
  - name: approach_fast
    when:
      all:
        - {sensor: front, below: 60}
        - {sensor: front, rate_below: -40}
    for: 0.1
    actuators: [left_motor, right_motor]
    command: stop
"""


def test_check_prints_each_guards_stop_delay_budget(tmp_path):
    text = GUARDED.replace("    command: stop\n", "    command: stop\n    max_delay: 0.4\n")
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 0, result.stderr
    assert (
        "  approach_fast: front: median 3 (60 ms) + max_jump 80 (120 ms) + ema 0.5 (60 ms)"
        " + calibrate scale 1 offset -1.5 (0 ms) at 60 ms = 240 ms; for 0.1 s = 100 ms;"
        " total 340 ms; max_delay 400 ms"
    ) in result.stdout
    assert (
        "approach_fast: front < 60cm and front falling > 40cm/s for 0.1s"
        " -> stop left_motor, right_motor (guard)"
    ) in result.stdout


def test_check_refuses_a_guard_over_its_max_delay_naming_the_figure(tmp_path):
    path = write_config(tmp_path, GUARDED)
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert f"{path}:11: reflexes[0]: 'approach_fast': filters and for: delay a stop" in (
        result.stderr
    )
    assert "by up to 340 ms, over max_delay 250 ms" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_filter_or_condition_is_refused_with_its_line(tmp_path):
    text = GUARDED.replace("{ema: 0.5}", "{ema: 2}").replace("below: 60}", "below: 60, ab: 1}")
    path = write_config(tmp_path, text)
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert f"{path}:6: sensors[0].filters[2].ema:" in result.stderr
    assert f"{path}:14: reflexes[0].when.all[0].ab: unknown key" in result.stderr


def test_a_threshold_inside_when_that_no_reading_can_cross_is_refused(tmp_path):
    """A typo like `below: -60` in a compound guard would make a guard that
    never stops the motor: refused as the one-line form's is."""
    path = write_config(tmp_path, GUARDED.replace("below: 60}", "below: -60}"))
    result = run_cli("--config", str(path), "--check")
    assert result.returncode == 2
    assert (
        f"{path}:14: reflexes[0].when.all[0].below: -60 is outside what a distance sensor "
        "can read (0 to 10000 cm), so the reflex would never fire"
    ) in result.stderr
    assert "Traceback" not in result.stderr


NEAR, FAR = 5, 50
#: Far, lone near spikes (a zero among them), three and more near readings,
#: a lone far spike; then the script ends and the front goes silent.
FRONT = [FAR] * 20 + [NEAR, FAR, FAR, 0, FAR, FAR, NEAR, FAR, FAR] + [NEAR] * 3 + [60, NEAR, NEAR]

ROBOT = f"""
server: {{host: 127.0.0.1, port: 0}}
sensors:
  - {{name: front, driver: sim, interval: 0.03, max_age: 0.3, filters: [{{median: 3}}],
     profile: script, repeat: false, values: {FRONT}}}
  - {{name: bumper, type: binary, driver: sim, interval: 0.03, max_age: 0.3,
     profile: constant, value: 0}}
actuators:
  - {{name: left_motor, driver: sim}}
  - {{name: right_motor, driver: sim}}
reflexes:
  - name: guard
    when: {{any: [{{sensor: front, below: 10}}, {{sensor: bumper, active: true}}]}}
    actuators: [left_motor, right_motor]
    command: stop
  - {{name: go, sensor: front, above: 15, actuators: [left_motor, right_motor], command: move}}
"""


def record_robot(start_daemon, watch, tmp_path: Path) -> Path:
    """A recorded run of ROBOT until its front sensor has gone silent."""
    daemon = start_daemon(ROBOT, args=("--record", str(tmp_path / "rec")))
    stream = watch(daemon.url)

    def front_stale_a_while() -> bool:
        """Stale, and bumper readings recorded after that (replay ends at the
        last reading: a stop after it would be only in the recorded run)."""
        worlds = stream.of_type("worldmodel")
        front = worlds[-1]["data"]["sensors"]["front"] if worlds else {}
        return front.get("fault") == "stale" and front["age_ms"] > 600

    wait_for(front_stale_a_while, what="the front's script to end")
    assert daemon.signal(signal.SIGTERM) == 0
    return one_file(tmp_path / "rec")


def test_lone_spikes_never_stop_or_restart_two_motors_three_near_readings_stop_both(
    start_daemon, watch, tmp_path
):
    path = record_robot(start_daemon, watch, tmp_path)
    decisions = list(recording.decisions(path))
    assert [d for d in decisions if d[0] == "actuator"] == [
        ("actuator", "left_motor", "MOVING"),
        ("actuator", "right_motor", "MOVING"),
        ("actuator", "left_motor", "STOPPED"),
        ("actuator", "right_motor", "STOPPED"),
    ]
    fired = [d[1] for d in decisions if d[0] == "reflex" and d[3]]
    assert fired[:2] == ["go", "guard"]
    assert ("reflex", "guard", "front < 10cm or bumper active", True) in decisions
    raw = [r.value for r in recording.readings(path) if r.sensor == "front"]
    assert raw[: len(FRONT)] == FRONT, "the raw readings are what is recorded"


def test_replay_verify_reproduces_filtered_compound_decisions_and_catches_an_edit(
    start_daemon, watch, tmp_path
):
    path = record_robot(start_daemon, watch, tmp_path)
    result = anse("replay", str(path), "--verify", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "replay matches the recording" in result.stderr
    edited = tmp_path / "edited.mcap"
    assert stop_made_a_move(path, edited, "right_motor")
    result = anse("replay", str(edited), "--verify", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "differs: recorded ('actuator', 'right_motor', 'MOVING')" in result.stderr


DASHBOARD = """
server: {host: 127.0.0.1, port: 0}
sensors:
  - {name: front, driver: sim, interval: 0.05, profile: constant, value: 30}
actuators:
  - {name: buzzer, type: output, driver: sim}
reflexes:
  - name: warn
    when: {all: [{sensor: front, below: 60}, {sensor: front, above: 40}]}
    for: 0.2
    actuators: [buzzer]
    command: "on"
  - {name: wait, sensor: front, below: 60, for: 100, actuator: buzzer, command: "on"}
"""


@pytest.mark.browser
def test_the_dashboard_shows_a_reflexs_whole_condition_which_part_holds_and_for_progress(
    start_daemon, page
):
    port = start_daemon(DASHBOARD).port
    page.goto(f"http://127.0.0.1:{port}/")
    row = "[data-reflex='warn']"
    page.wait_for_selector(f"{row} .verdict")
    assert "front < 60cm and front > 40cm for 0.2s → on buzzer" in text(page, row)
    assert page.locator(f"{row} .part[data-holds=true]").inner_text() == "✓ front < 60cm"
    assert page.locator(f"{row} .part[data-holds=false]").inner_text() == "✗ front > 40cm"
    assert text(page, f"{row} .for-progress") == "for 0.2s: 0%"
    page.wait_for_function(
        "() => Number(document.querySelector(\"[data-reflex='wait'] .for-progress\")"
        "?.dataset.progress) > 0"
    )
    assert text(page, "#estop-input") == "no hardwired E-stop"
    assert page.errors == []
