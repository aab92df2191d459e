"""The baseline: the seed backend's design, fed by the same serial sensor.

Everything happens in one coroutine per reading, in the seed's order: read →
broadcast sensor → world model → broadcast → reflex → broadcast → motor →
broadcast, where broadcast is the plain per-client loop
`for ws in clients: await ws.send(message)`.  Same parser, same gpiozero
motor, same event JSON as anse-hw, so the difference is the design alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from anse_hw import events
from anse_hw.drivers.gpio_motor import GpioMotor
from anse_hw.drivers.protocols import TFminiParser
from anse_hw.kinds import MOVING, STOPPED


@contextlib.contextmanager
def tfmini_on_loop(device: str, on_value: Callable[[float], None]) -> Iterator[None]:
    """The pty's TFmini frames read by the running event loop itself
    (`add_reader`), each valid distance passed to `on_value`."""
    loop = asyncio.get_running_loop()
    fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    parser = TFminiParser()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        for sample in parser.feed(data):
            if sample.valid:
                on_value(sample.value)

    loop.add_reader(fd, readable)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class PtyServer:
    """What the comparison servers share: the pty, the motor, the clients."""

    def __init__(self, port: int, device: str, motor: Any) -> None:
        self.port = port
        self.device = device
        self.motor = motor
        self.clients: set[ServerConnection] = set()
        self.state = STOPPED
        self.seq = 0
        self.total = 0
        self.last_reflex: str | None = None
        self.stop = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        self.clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.clients.discard(ws)


class SeedStyleServer(PtyServer):
    def __init__(self, port: int, device: str, motor: Any) -> None:
        super().__init__(port, device, motor)
        self.distance: float | None = None
        self.readings: asyncio.Queue[float] = asyncio.Queue()

    async def broadcast(self, event_type: str, data: dict) -> None:
        self.seq += 1
        message = events.encode(events.make(event_type, self.seq, data))
        for ws in list(self.clients):
            try:
                await ws.send(message)
            except Exception:
                self.clients.discard(ws)

    async def world(self) -> None:
        self.total += 1
        await self.broadcast(
            events.WORLDMODEL,
            {
                "distance_cm": self.distance,
                "safe": (self.distance or 0) >= 10,
                "actuator_state": self.state,
                "last_reflex": self.last_reflex,
                "total_events": self.total,
            },
        )

    async def step(self, cm: float) -> None:
        self.distance = cm
        await self.broadcast(events.SENSOR, events.sensor_data("lidar", cm, "distance", "cm"))
        await self.world()
        target = None
        if cm < 10 and self.state != STOPPED:
            target, self.last_reflex, condition = STOPPED, "proximity_safeguard", "distance < 10cm"
        elif cm > 15 and self.state == STOPPED:
            target, self.last_reflex, condition = MOVING, "clear_to_move", "distance > 15cm"
        if target is None:
            return
        await self.broadcast(events.REFLEX, events.reflex_data(self.last_reflex, condition))
        await self.world()
        self.motor.drive(target)
        self.state = target
        await self.broadcast(events.ACTUATOR, events.actuator_data("movement", target, "motor"))
        await self.world()

    async def run(self) -> None:
        with tfmini_on_loop(self.device, self.readings.put_nowait):
            async with serve(
                self.handler, "127.0.0.1", self.port, compression=None, ping_interval=None
            ):
                stepper = asyncio.create_task(self._steps())
                await self.stop.wait()
                stepper.cancel()

    async def _steps(self) -> None:
        while True:
            await self.step(await self.readings.get())


def bench_motor(pin_factory: Any) -> GpioMotor:
    """The motor every benchmark drives: L298N-style on GPIO17/18 at speed 0.6."""
    return GpioMotor(
        "movement",
        pin_factory=pin_factory,
        forward=17,
        backward=18,
        phase=None,
        enable=None,
        pwm=True,
        speed=0.6,
        direction="forward",
    )


def main() -> None:
    """Run the baseline alone on the seed's sim pace (for the cost figures)."""
    import argparse
    import pty
    import threading
    import time
    import tty

    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from anse_hw.drivers.protocols import tfmini_frame
    from anse_hw.drivers.sim import sweep
    from anse_hw.kinds import SENSOR_KINDS

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.5)
    args = parser.parse_args()
    master, slave = pty.openpty()
    tty.setraw(slave)
    motor = bench_motor(MockFactory(pin_class=MockPWMPin))
    server = SeedStyleServer(args.port, os.ttyname(slave), motor)

    def sensor() -> None:
        for cm in sweep(*SENSOR_KINDS["distance"].sweep):
            os.write(master, tfmini_frame(round(cm)))
            time.sleep(args.interval)

    threading.Thread(target=sensor, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.run())


if __name__ == "__main__":
    main()
