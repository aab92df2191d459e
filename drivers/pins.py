"""Choosing gpiozero's pin factory from `gpio.pin_factory` in the YAML.

One factory object is made per daemon and handed to every GPIO device, so the
backend is a config choice and never an `if sim:` in the engine.  `mock` is
gpiozero's own MockFactory with PWM-capable pins; with `mock_state_file` set,
every pin change is also written to a JSON file, which is how a test (or you)
can see the pins of a daemon running in another process, and how the pins
"stay driven" after a SIGKILL, as they do on a Raspberry Pi.
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

from drivers.base import DriverError

FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory", "python3-lgpio (apt) or lgpio (pip)"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory", "python3-rpi.gpio or RPi.GPIO"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory", "pigpio, with the pigpiod daemon running"),
    "native": ("gpiozero.pins.native", "NativeFactory", "nothing (built into gpiozero)"),
}


def make_pin_factory(name: str | None, mock_state_file: str | None = None) -> Any:
    """The pin factory for `name`, or gpiozero's own default when None."""
    if name == "mock":
        return (
            PersistentMockFactory(mock_state_file)
            if mock_state_file
            else MockFactory(pin_class=MockPWMPin)
        )
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
    """A MockPWMPin that records every change in its factory's state file."""

    def _change_state(self, value: Any) -> bool:
        changed = super()._change_state(value)
        self.factory.persist(self)
        return changed

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        self.factory.persist(self)


class PersistentMockFactory(MockFactory):
    def __init__(self, path: str) -> None:
        super().__init__(pin_class=PersistentPin)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = read_pin_states(self.path)

    def persist(self, pin: PersistentPin) -> None:
        with self._lock:
            self._states[str(pin.info.name)] = {
                "function": pin._function,
                "state": float(pin._state),
            }
            write_atomically(self.path, json.dumps(self._states, sort_keys=True))


def read_pin_states(path: Path) -> dict[str, dict[str, Any]]:
    """The pin states a PersistentMockFactory wrote, or {} if none yet."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
