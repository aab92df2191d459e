"""Choosing gpiozero's pin factory from `gpio.pin_factory` in the YAML.

One factory object is made per daemon and handed to every GPIO device, so the
backend is a config choice and never an `if sim:` in the engine.  `mock` is
gpiozero's own MockFactory with PWM-capable pins.  Two files connect it to
the world outside the process: with `mock_state_file`, every pin change is
written to a JSON file (how a test, or you, sees the pins of a running
daemon, and how the pins "stay driven" after a SIGKILL, as on a Raspberry
Pi); with `mock_input_file`, input pins follow the levels in a JSON file
(`{"GPIO5": 0}` presses a bumper wired to GND), polled every 10 ms.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPWMPin

from anse_hw.drivers.base import DriverError

FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory", "python3-lgpio (apt) or lgpio (pip)"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory", "python3-rpi.gpio or RPi.GPIO"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory", "pigpio, with the pigpiod daemon running"),
    "native": ("gpiozero.pins.native", "NativeFactory", "nothing (built into gpiozero)"),
}


def make_pin_factory(
    name: str | None, mock_state_file: str | None = None, mock_input_file: str | None = None
) -> Any:
    """The pin factory for `name`, or gpiozero's own default when None."""
    if name == "mock":
        if mock_state_file or mock_input_file:
            return FileMockFactory(mock_state_file, mock_input_file)
        return MockFactory(pin_class=MockPWMPin)
    if name is None:
        from gpiozero import Device

        try:
            return Device._default_pin_factory()
        except Exception as exc:
            raise DriverError(
                f"no GPIO backend works on this machine ({exc}); set gpio.pin_factory, "
                "or run with --sim"
            ) from exc
    module_name, class_name, needs = FACTORIES[name]
    try:
        return getattr(importlib.import_module(module_name), class_name)()
    except Exception as exc:
        raise DriverError(
            f"gpio.pin_factory {name} is not usable here ({exc}); it needs {needs}"
        ) from exc


class PersistentPin(MockPWMPin):
    """A MockPWMPin that records every change in its factory's state file (if any)."""

    def _change_state(self, value: Any) -> bool:
        changed = super()._change_state(value)
        self.factory.persist(self)
        return changed

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        self.factory.persist(self)


class FileMockFactory(MockFactory):
    """MockFactory whose pins are visible in, and drivable from, JSON files."""

    INPUT_POLL = 0.01

    def __init__(self, state_file: str | None, input_file: str | None) -> None:
        super().__init__(pin_class=PersistentPin)
        self.path = Path(state_file) if state_file else None
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = read_pin_states(self.path) if self.path else {}
        self._closed = threading.Event()
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
            write_atomically(self.path, json.dumps(self._states, sort_keys=True))

    def _follow_inputs(self, path: Path) -> None:
        while not self._closed.wait(self.INPUT_POLL):
            levels = read_pin_states(path)
            for pin in list(self.pins.values()):
                level = levels.get(str(pin.info.name))
                if level is None or pin._function != "input" or bool(level) == bool(pin.state):
                    continue
                pin.drive_high() if level else pin.drive_low()

    def close(self) -> None:
        self._closed.set()
        super().close()


def read_pin_states(path: Path) -> dict[str, Any]:
    """A JSON object from one of the mock factory's files, or {} if none yet."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
