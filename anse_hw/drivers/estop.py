"""The hardwired E-stop input: a normally-closed button between a pin and GND.

With the pull-up on, the closed circuit holds the pin low; pressing the
button or cutting the wire lets it go high.  So a broken wire is a stop,
never a silently missing button (IEC 60204-1 wants the same of the
hardware).  The change is reported on gpiozero's edge callback, from its
own thread, the moment gpiozero sees it: no polling interval stands
between the button and the latch.  Software only monitors and latches; the
button should also cut the motors' power where the hardware allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anse_hw.drivers.gpio_io import _errors
from anse_hw.errors import DriverError

__all__ = ["EstopInput"]


class EstopInput:
    def __init__(self, pin: int, pin_factory: Any = None) -> None:
        from gpiozero import DigitalInputDevice

        self.pin = pin
        try:
            # pull_up: active (closed) while the pin is low
            self._device = DigitalInputDevice(pin, pull_up=True, pin_factory=pin_factory)
        except _errors() as exc:
            raise DriverError(f"estop: cannot use GPIO{pin} as an input: {exc}") from exc

    def describe(self) -> str:
        return f"GPIO{self.pin} input, normally closed to GND (pull-up): open = E-stop"

    def start(self, on_change: Callable[[bool], None]) -> None:
        """`on_change(open)` on every edge, and once now: a circuit already
        open at start latches too."""
        self._device.when_deactivated = lambda: on_change(True)
        self._device.when_activated = lambda: on_change(False)
        on_change(not self._device.is_active)

    def close(self) -> None:
        if not self._device.closed:
            self._device.when_activated = self._device.when_deactivated = None
            self._device.close()
