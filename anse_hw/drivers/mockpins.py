"""gpiozero's MockFactory, connected to JSON files (see anse_hw.drivers.pins).

Its own module so that gpiozero is imported only when a mock pin factory is
actually made.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw import statefile
from anse_hw.drivers.pins import read_pin_states

__all__ = ["FileMockFactory", "MockFactory", "MockPWMPin", "PersistentPin"]


class PersistentPin(MockPWMPin):
    """A MockPWMPin that records every change in its factory's state file (if any)."""

    def _change_state(self, value: Any) -> bool:
        changed = super()._change_state(value)
        self.factory.persist(self)
        return changed

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        self.factory.persist(self)

    def _set_pull(self, value: str) -> None:
        # An input reads the wiring the file describes from its first moment,
        # as a real pin would, not only from the follower's next poll.
        super()._set_pull(value)
        self.factory.follow(self, self.factory.input_levels())


class FileMockFactory(MockFactory):
    """MockFactory whose pins are visible in, and drivable from, JSON files."""

    INPUT_POLL = 0.01

    def __init__(self, state_file: str | None, input_file: str | None) -> None:
        super().__init__(pin_class=PersistentPin)
        self.path = Path(state_file) if state_file else None
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = read_pin_states(self.path) if self.path else {}
        self._closed = threading.Event()
        self.input_path = Path(input_file) if input_file else None
        if input_file:
            follow = threading.Thread(
                target=self._follow_inputs, args=(Path(input_file),), name="mock-inputs"
            )
            follow.daemon = True
            follow.start()

    def persist(self, pin: PersistentPin) -> None:
        if self.path is None:
            return
        with self._lock:
            self._states[str(pin.info.name)] = {
                "function": pin._function,
                "state": float(pin._state),
            }
            # No fsync: it is rewritten at every pin change, on the reflex path.
            data = json.dumps(self._states, sort_keys=True).encode()
            statefile.write_bytes(self.path, data, durable=False)

    def _follow_inputs(self, path: Path) -> None:
        while not self._closed.wait(self.INPUT_POLL):
            levels = read_pin_states(path)
            for pin in list(self.pins.values()):
                self.follow(pin, levels)

    def input_levels(self) -> dict[str, Any]:
        return read_pin_states(self.input_path) if self.input_path else {}

    def follow(self, pin: PersistentPin, levels: dict[str, Any]) -> None:
        """Drive an input pin to the level `levels` gives it, if it differs."""
        level = levels.get(str(pin.info.name))
        if level is None or pin._function != "input" or bool(level) == bool(pin.state):
            return
        pin.drive_high() if level else pin.drive_low()

    def close(self) -> None:
        self._closed.set()
        super().close()
