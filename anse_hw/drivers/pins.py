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
from pathlib import Path
from typing import Any

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
    # gpiozero is imported here, not at the top: a robot with no GPIO device
    # (--sim, serial sensors only) never loads it.
    if name == "mock":
        from anse_hw.drivers.mockpins import FileMockFactory, MockFactory, MockPWMPin

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
