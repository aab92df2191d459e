"""`anse-hw` as a process: a TFmini on a pseudo-terminal, a motor on the mock
pin factory, a real WebSocket client watching the stream."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from anse_hw.drivers.pins import read_pin_states
from anse_hw.drivers.protocols import tfmini_frame
from tests.conftest import check_contract, hardware_config, pin, wait_for
from tests.serialdev import PtyDevice


def test_serial_obstacle_stops_and_clears_the_gpio_motor(start_daemon, tmp_path):
    device = PtyDevice(tmp_path / "ttyTFMINI")
    pins = tmp_path / "pins.json"
    daemon = start_daemon(hardware_config(0, device.path, pins, max_age=5))

    async def next_actuator(ws, received):
        while True:
            event = json.loads(await ws.recv())
            check_contract(event)
            received.append(event)
            if event["type"] == "actuator":
                return event["data"]["state"]

    async def scenario():
        received = []
        async with connect(daemon.url) as ws, asyncio.timeout(60):
            snapshot = json.loads(await ws.recv())
            assert snapshot["data"]["actuator_state"] == "STOPPED"  # S1
            device.write(tfmini_frame(80))
            assert await next_actuator(ws, received) == "MOVING"
            assert pin(pins, "GPIO17") == 0.6 and pin(pins, "GPIO18") == 0.0
            device.write(tfmini_frame(6))
            assert await next_actuator(ws, received) == "STOPPED"
            assert pin(pins, "GPIO17") == 0.0 and pin(pins, "GPIO18") == 0.0
            device.write(tfmini_frame(12))  # between the thresholds: stays stopped
            device.write(tfmini_frame(40))
            assert await next_actuator(ws, received) == "MOVING"
        return received

    received = asyncio.run(scenario())
    values = [e["data"]["value"] for e in received if e["type"] == "sensor"]
    assert values == [80.0, 6.0, 12.0, 40.0]
    assert pin(pins, "GPIO12") == 1.0, "enable held high while running"
    daemon.stop()
    assert daemon.proc.returncode == 0
    assert pin(pins, "GPIO17") == 0.0
    wait_for(
        lambda: read_pin_states(pins)["GPIO17"]["function"] == "input", what="pins released at exit"
    )
    device.close()
