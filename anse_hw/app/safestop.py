"""Stopping every actuator when the daemon cannot (docs/safety.md S6).

systemd runs `anse-hw --safe-stop` (ExecStopPost) after every exit, including
SIGKILL and crashes, when a Raspberry Pi kernel still drives the dead
process's outputs; without systemd the guardian runs the same stop.  It must
work when the config file has since been broken, edited or deleted, so it
trusts two sources and drives the union, in this order:

- whatever is still valid in the config file, actuator by actuator (first:
  nothing else has to be read before these pins are driven);
- the record the daemon writes (atomically) at every successful start in the
  robot's state directory: the pin-driving actuators and the pin factory of
  the run that may have died.

Both are read without blocking (a FIFO or a device in their place is refused
at once).  It fails only when neither names anything it could stop.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from pathlib import Path
from typing import Any

from anse_hw import statefile
from anse_hw.app.devices import open_i2c_bus
from anse_hw.config import Salvage, salvage, salvage_file
from anse_hw.drivers.i2c.sensors import SharedBus
from anse_hw.drivers.pins import make_pin_factory
from anse_hw.drivers.registry import ACTUATOR_DRIVERS, build_actuator, find
from anse_hw.errors import FAILURE, OK
from anse_hw.kinds import ACTUATOR_KINDS, angle_of
from anse_hw.model import ActuatorConfig, Config, GpioConfig, I2cConfig

log = logging.getLogger("anse_hw")

RECORD = "safe-stop.json"
#: Exit codes: something was driven safe, or nothing could be.
EXIT_STOPPED, EXIT_NOTHING = OK, FAILURE
#: How many robots' directories --safe-stop looks through for a lost record.
MAX_ROBOTS = 1000


def drives_pins(actuator: ActuatorConfig) -> bool:
    """It drives a GPIO pin or an I2C device (a PCA9685's servo): real outputs."""
    cls = find(ACTUATOR_DRIVERS, actuator.type, actuator.driver)
    return cls.USES_GPIO or cls.USES_I2C


def on_fakes(config: Config) -> bool:
    """No actuator drives a pin: nothing to stop after a crash, and the run
    keeps its state apart from the real robot's."""
    return not any(drives_pins(a) for a in config.actuators)


def write_record(config: Config, state: Path, config_file: str | None) -> None:
    """Called once the daemon's drivers are up, into the robot's state
    directory.  A run on fakes writes none."""
    actuators = [a for a in config.actuators if drives_pins(a)]
    if not actuators:
        return
    path = state / RECORD
    record = {
        "config": config.source,
        # How --safe-stop finds this record when the config is gone.
        "config_file": os.path.realpath(config_file) if config_file else None,
        "gpio": dataclasses.asdict(config.gpio),
        "i2c": dataclasses.asdict(config.i2c),
        "actuators": [
            {
                "name": a.name,
                "type": a.type,
                "driver": a.driver,
                **({"safe": _safe_choice(a)} if a.type != "motor" else {}),
                **a.options,
            }
            for a in actuators
        ],
    }
    try:
        statefile.write_json(path, record)
    except OSError as exc:
        log.warning(
            "could not write the safe-stop record %s (%s): after a crash, --safe-stop "
            "will rely on the config file alone",
            path,
            exc.strerror,
        )


def _safe_choice(actuator: ActuatorConfig) -> str | float:
    """The `safe:` value that gives this actuator's safe state."""
    kind = ACTUATOR_KINDS[actuator.type]
    if kind.value is not None:
        return angle_of(actuator.safe_state)
    choices = kind.safe
    return next(choice for choice, state in choices.items() if state == actuator.safe_state)


def run(config_path: str | None, state: Path | None = None) -> int:
    """`--safe-stop` (and the guardian, which passes the robot's state
    directory).  The config's actuators are driven first: nothing has to be
    read for them but the file itself; then the record, for what only it
    names.  The log says what was found and what was done."""
    done: list[tuple[GpioConfig, I2cConfig, ActuatorConfig]] = []
    found: list[Salvage] = []
    stopped = 0
    if config_path is not None:
        from_file = salvage_file(config_path)
        for problem in from_file.problems:
            log.warning("safe-stop: ignoring: %s", problem)
        found.append(from_file)
        stopped += _stop(from_file, done)
    if state is None:
        state = _state_of(config_path, found[0] if found else None)
    record_path = state / RECORD
    from_record = _record(record_path, config_path)
    if from_record is not None:
        found.append(from_record)
        stopped += _stop(from_record, done)
    if done:
        return EXIT_STOPPED if stopped else EXIT_NOTHING
    if any(not s.problems for s in found):
        log.info("safe-stop: nothing to stop: no actuator drives a pin")
        return EXIT_STOPPED
    log.error(
        "safe-stop: nothing could be stopped: no usable actuator in %s and no record at %s",
        config_path or "(no config file)",
        record_path,
    )
    return EXIT_NOTHING


def _state_of(config_path: str | None, from_file: Salvage | None) -> Path:
    """The robot's state directory, as the daemon computed it from the same file."""
    return statefile.robot_state_dir(
        from_file.state_dir if from_file else None,
        from_file.robot_id if from_file else None,
        config_path,
        on_fakes=False,
    )


def _record(path: Path, config_path: str | None) -> Salvage | None:
    """The record of the last run, or None (said in the log).  Where the
    config cannot name the robot's directory any more (deleted, or its
    robot_id unreadable), the record that names this config file."""
    try:
        return salvage(statefile.read_json(path), str(path))
    except statefile.StateFileError as exc:
        problem = exc
    if config_path is not None:
        for other in _records_beside(path.parent):
            try:
                data = statefile.read_json(other)
            except statefile.StateFileError:
                continue
            if isinstance(data, dict) and data.get("config_file") == os.path.realpath(config_path):
                log.info("safe-stop: the record of %s is %s", config_path, other)
                return salvage(data, str(other))
    log.warning("safe-stop: no record of the last run: %s", problem)
    return None


def _records_beside(state: Path) -> list[Path]:
    """The other robots' records under the same state base (a bounded look)."""
    try:
        robots = list(itertools.islice(state.parent.iterdir(), MAX_ROBOTS))
    except OSError:
        return []
    return [robot / RECORD for robot in robots if robot != state]


def _stop(source: Salvage, done: list[tuple[GpioConfig, I2cConfig, ActuatorConfig]]) -> int:
    """Stop what `source` names that is not stopped yet; how many were."""
    todo = []
    for actuator in source.actuators:
        if not drives_pins(actuator):
            log.info("%s: simulated, no pins to stop", actuator.name)
        elif (source.gpio, source.i2c, actuator) not in done:
            done.append((source.gpio, source.i2c, actuator))
            todo.append(actuator)
    return _stop_group(source.gpio, source.i2c, todo) if todo else 0


def _stop_group(gpio: GpioConfig, i2c: I2cConfig, actuators: list[ActuatorConfig]) -> int:
    """The pin actuators through one pin factory, then the servo boards'
    through one I2C bus: a bus that cannot be opened costs only those."""
    on_pins = [a for a in actuators if not _on_i2c(a)]
    on_i2c = [a for a in actuators if _on_i2c(a)]
    stopped = 0
    if on_pins:
        try:
            factory = make_pin_factory(gpio.pin_factory, gpio.mock_state_file, gpio.mock_input_file)
        except Exception as exc:
            log.error("safe-stop: %s", exc)
        else:
            try:
                stopped += _stop_each(on_pins, lambda item: build_actuator(item, factory))
            finally:
                factory.close()
    if on_i2c:
        try:
            bus = SharedBus(open_i2c_bus(i2c))
        except Exception as exc:
            log.error("safe-stop: %s", exc)
        else:
            with bus.held():
                stopped += _stop_each(on_i2c, lambda item: build_actuator(item, i2c=bus))
    return stopped


def _on_i2c(actuator: ActuatorConfig) -> bool:
    return find(ACTUATOR_DRIVERS, actuator.type, actuator.driver).USES_I2C


def _stop_each(actuators: list[ActuatorConfig], build: Any) -> int:
    """Build, drive safe and close each in turn (the config and the record
    may name the same pin twice); how many were driven safe."""
    stopped = 0
    for item in actuators:
        try:
            actuator = build(item)
            try:
                actuator.drive(actuator.safe_state)
                log.info("%s: %s (%s)", item.name, actuator.state, actuator.describe())
                stopped += 1
            finally:
                actuator.close()
        except Exception as exc:
            log.error("%s: could not be stopped: %s", item.name, exc)
    return stopped
