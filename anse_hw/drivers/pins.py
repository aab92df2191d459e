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
from pathlib import Path
from typing import Any

from anse_hw import files
from anse_hw.errors import DriverError

#: Far more than the JSON of every pin a Pi has.
MAX_PIN_FILE = 64 * 1024

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
            for key, path in (
                ("mock_state_file", mock_state_file),
                ("mock_input_file", mock_input_file),
            ):
                problem = path and mock_file_problem(path, written=key == "mock_state_file")
                if problem:
                    raise DriverError(problem, ("gpio", key))
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


def mock_file_problem(path: str, written: bool) -> str | None:
    """Why the mock factory could not use `path`: its directory must exist
    (a typo would otherwise never drive an input), and take new files if
    the file is `written` (the state file is replaced at every pin change,
    which would fail at the first one), and a file already there must be a
    regular one (never a FIFO to block on, or /dev/zero)."""
    directory = Path(path).parent
    if not directory.is_dir():
        return f"{path}: directory {directory} does not exist"
    if written and not os.access(directory, os.W_OK | os.X_OK):
        return f"{path}: cannot create files in {directory} (permission denied)"
    if os.path.lexists(path):
        try:
            files.open_regular(path).close()
        except files.FileProblem as exc:
            return str(exc)
    return None


def read_pin_states(path: Path) -> dict[str, Any]:
    """A JSON object from one of the mock factory's files, or {} if there is
    none yet, or none that could be one (read through files.py: a FIFO put
    there later never blocks the input thread)."""
    try:
        data = json.loads(files.read_text(path, MAX_PIN_FILE))
    except (files.FileProblem, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
