"""The anchor: the least a Python server can do for the same stream.

One asyncio loop reads the TFmini frames from the pseudo-terminal itself
(`add_reader`, no thread), parses them with the same parser, builds the same
`sensor` and `worldmodel` event JSON that anse-hw sends (same keys, same
shape), drives the same gpiozero motor on the same two reflexes, and sends
every event with `websockets.broadcast()`: no outboxes, no conflation, no
back-pressure, no world model beyond one number, no lock, no second thread.
What anse-hw costs above this is the price of its guarantees; this is the
floor it is measured against, and at 100 or 1000 clients it is also raw
`broadcast()` fan-out capacity.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
from typing import Any

from websockets.asyncio.server import broadcast, serve

from anse_hw import events
from anse_hw.drivers.protocols import TFminiParser
from anse_hw.kinds import MOVING, STOPPED
from benchmarks.baseline import PtyServer, tfmini_on_loop


class MinimalServer(PtyServer):
    def send(self, event_type: str, data: dict[str, Any]) -> None:
        self.seq += 1
        broadcast(self.clients, events.encode(events.make(event_type, self.seq, data)))

    def world(self, cm: float) -> dict[str, Any]:
        """anse-hw's worldmodel data for one sensor and one motor, built directly."""
        return {
            "distance_cm": cm,
            "safe": cm >= 10,
            "actuator_state": self.state,
            "last_reflex": self.last_reflex,
            "total_events": self.total,
            "actuators": {"movement": self.state},
            "sensors": {
                "lidar": {
                    "value": cm,
                    "fresh": True,
                    "age_ms": 0,
                    "fault": None,
                    "type": "distance",
                    "unit": "cm",
                }
            },
            "estop_latched": False,
            "last_stop": None,
        }

    def event(self, event_type: str, data: dict[str, Any], cm: float) -> None:
        self.total += 1
        self.send(event_type, data)
        self.send(events.WORLDMODEL, self.world(cm))

    def step(self, cm: float) -> None:
        self.event(events.SENSOR, events.sensor_data("lidar", cm, "distance", "cm"), cm)
        if cm < 10 and self.state != STOPPED:
            target, name, condition = STOPPED, "proximity_safeguard", "distance < 10cm"
        elif cm > 15 and self.state == STOPPED:
            target, name, condition = MOVING, "clear_to_move", "distance > 15cm"
        else:
            return
        self.motor.drive(target)  # first, as anse-hw does
        self.state, self.last_reflex = target, name
        self.event(events.REFLEX, events.reflex_data(name, condition), cm)
        self.event(events.ACTUATOR, events.actuator_data("movement", target, "motor"), cm)

    async def run(self) -> None:
        with tfmini_on_loop(self.device, self.step):
            async with serve(
                self.handler, "127.0.0.1", self.port, compression=None, ping_interval=None
            ):
                await self.stop.wait()


class ThreadedMinimalServer(MinimalServer):
    """The same, with the reading on its own thread as anse-hw does it (so that
    a reflex never waits for the event loop): the thread reads and parses, and
    hands each reading to the loop with `call_soon_threadsafe`.  The difference
    to MinimalServer is the price of that one architectural choice."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        fd = os.open(self.device, os.O_RDONLY | os.O_NOCTTY)
        stop_r, stop_w = os.pipe()

        def reader() -> None:
            parser = TFminiParser()
            while True:
                ready, _, _ = select.select([fd, stop_r], [], [])
                if stop_r in ready:
                    return
                for sample in parser.feed(os.read(fd, 4096)):
                    if sample.valid:
                        loop.call_soon_threadsafe(self.step, sample.value)

        thread = threading.Thread(target=reader, name="minimal-reader")
        thread.start()
        async with serve(
            self.handler, "127.0.0.1", self.port, compression=None, ping_interval=None
        ):
            await self.stop.wait()
        os.write(stop_w, b"x")
        thread.join()
        for handle in (fd, stop_r, stop_w):
            os.close(handle)
