"""`manual: latch` (issue 26): an output no guard drives can be switched on
by an operator and left on; an E-stop still turns it off, and the config
refuses it where a guard drives the output, naming the file and line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.conftest import pin, run_cli, wait_for, write_config

ROBOT = """
server: {{host: 127.0.0.1, port: 0}}
gpio: {{pin_factory: mock, mock_state_file: {pins}}}
sensors:
  - {{name: front, driver: sim, interval: 0.1}}
actuators:
  - {{name: lamp, type: output, driver: gpio, pin: 20, manual: latch}}
  - {{name: horn, type: output, driver: gpio, pin: 21}}
"""


def send(port: int, token: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_latching_output_stays_on_until_switched_off_or_estop(start_daemon, watch, tmp_path):
    pins = tmp_path / "pins.json"
    daemon = start_daemon(ROBOT.format(pins=pins))
    token = (daemon.state / "control-token").read_text().strip()
    stream = watch(daemon.url)
    assert stream.events[0]["data"]["actuator_kinds"]["lamp"]["manual"] == "latch"

    assert send(daemon.port, token, "/api/actuators/lamp", {"command": "on"})[0] == 200
    assert send(daemon.port, token, "/api/actuators/horn", {"command": "on"})[0] == 200
    wait_for(lambda: pin(pins, "GPIO20") == 1.0 and pin(pins, "GPIO21") == 1.0, what="both on")
    # The horn's on was hold-to-run: without heartbeats it lapses, and by
    # then the lamp's would have too.  The lamp stays on.
    wait_for(
        lambda: any("no heartbeat" in e["data"]["condition"] for e in stream.of_type("reflex")),
        what="the horn's hold lapsing",
    )
    wait_for(lambda: pin(pins, "GPIO21") == 0.0, what="the horn off")
    assert pin(pins, "GPIO20") == 1.0
    lapsed = [e["data"]["condition"] for e in stream.of_type("reflex")]
    assert not any("lamp" in c and "no heartbeat" in c for c in lapsed)

    # Switched off by hand, on again, then the E-stop turns it off.
    assert send(daemon.port, token, "/api/actuators/lamp", {"command": "off"})[0] == 200
    wait_for(lambda: pin(pins, "GPIO20") == 0.0, what="the lamp off")
    assert send(daemon.port, token, "/api/actuators/lamp", {"command": "on"})[0] == 200
    wait_for(lambda: pin(pins, "GPIO20") == 1.0, what="the lamp on again")
    assert send(daemon.port, token, "/api/estop")[0] == 200
    wait_for(lambda: pin(pins, "GPIO20") == 0.0, what="the E-stop turning the lamp off")
    # A reset moves nothing: the lamp stays off.
    assert send(daemon.port, token, "/api/reset")[0] == 200
    assert pin(pins, "GPIO20") == 0.0
    assert "Traceback" not in daemon.log()


def test_latch_is_refused_on_an_output_a_guard_drives(tmp_path):
    config = write_config(
        tmp_path,
        """sensors:
  - {name: cpu, type: temperature, driver: sim}
actuators:
  - name: fan
    type: output
    driver: sim
    manual: latch
reflexes:
  - {name: fan_on, sensor: cpu, above: 45, actuator: fan, command: on}
  - {name: fan_off, sensor: cpu, below: 40, actuator: fan, command: off}
""",
    )
    result = run_cli("--config", str(config), "--check")
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"{config}:7" in lines[0] and "fan_off" in lines[0] and "manual: hold" in lines[0]


def test_latch_is_for_outputs_not_motors(tmp_path):
    config = write_config(
        tmp_path,
        """sensors:
  - {name: front, driver: sim}
actuators:
  - {name: wheels, driver: sim, manual: latch}
reflexes:
  - {name: stop, sensor: front, below: 10, actuator: wheels, command: stop}
""",
    )
    result = run_cli("--config", str(config), "--check")
    assert result.returncode == 2 and "manual" in result.stderr and "outputs" in result.stderr
