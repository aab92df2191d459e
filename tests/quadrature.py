"""A simulated wheel on gpiozero's MockFactory: the H-bridge pins' duty in,
quadrature edges out.

A thread reads the duty a driver puts on a wheel's pins (the enable pin's
PWM value, signed by which direction pin is high), steps an
anse_hw.plant.WheelPlant with it, and drives the encoder's A and B mock
pins through the Gray-code sequence for every count the wheel turned, so a
gpiozero RotaryEncoder on those pins counts real edges.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from anse_hw.plant import WheelPlant

#: (A active, B active) through one quadrature cycle turning forward;
#: gpiozero's RotaryEncoder counts +1 at the end of it.
CYCLE = ((False, False), (True, False), (True, True), (False, True))


class QuadratureWheel:
    """One wheel: its bridge pins, its plant, its encoder pins."""

    STEP = 0.002  # s between plant steps

    def __init__(
        self, factory: Any, bridge: dict[str, int], encoder: dict[str, int], plant: WheelPlant
    ) -> None:
        self.factory = factory
        self.bridge = bridge
        self.encoder = encoder
        self.plant = plant
        self.edges = 0  # quarter cycles driven so far, signed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quadrature", daemon=True)

    def __enter__(self) -> QuadratureWheel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def duty(self) -> float:
        """The signed duty the bridge gives the motor: braked or coasting is 0."""
        pin = self.factory.pin
        forward = pin(self.bridge["forward"]).state
        backward = pin(self.bridge["backward"]).state
        if bool(forward) == bool(backward):
            return 0.0
        speed = float(pin(self.bridge["enable"]).state)
        return speed if forward else -speed

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.STEP):
            now = time.monotonic()
            self.plant.duty = self.duty()
            self.plant.step(now - last)
            last = now
            self._edge_to(self.plant.counts * 4)

    def _edge_to(self, target: int) -> None:
        a = self.factory.pin(self.encoder["a"])
        b = self.factory.pin(self.encoder["b"])
        while self.edges != target:
            self.edges += 1 if target > self.edges else -1
            a_active, b_active = CYCLE[self.edges % 4]
            # Pulled up: an active line is low.  Only the one that changes moves.
            if a_active == bool(a.state):
                a.drive_low() if a_active else a.drive_high()
            if b_active == bool(b.state):
                b.drive_low() if b_active else b.drive_high()
