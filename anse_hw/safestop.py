"""Stopping every actuator when the daemon cannot (SPEC §7 S6).

systemd runs `anse-hw --safe-stop` (ExecStopPost) after every exit, including
SIGKILL and crashes, when a Raspberry Pi kernel still drives the dead
process's outputs.  It must work when the config file has since been broken,
edited or deleted, so it trusts two sources and drives the union:

- the record the daemon writes (atomically) at every successful start: the
  pin-driving actuators and the pin factory of the run that may have died;
- whatever is still valid in the config file, actuator by actuator.

It fails only when neither names anything it could stop.
"""

from __future__ import annotations

import dataclasses
import logging

from anse_hw import statefile
from anse_hw.config import ActuatorConfig, Config, GpioConfig, salvage, salvage_file
from anse_hw.drivers.kinds import ACTUATOR_KINDS
from anse_hw.drivers.pins import make_pin_factory
from anse_hw.drivers.registry import ACTUATOR_DRIVERS, build_actuator, find

log = logging.getLogger("anse_hw")

RECORD = "safe-stop.json"
EXIT_STOPPED, EXIT_NOTHING = 0, 1


def drives_pins(actuator: ActuatorConfig) -> bool:
    return find(ACTUATOR_DRIVERS, actuator.type, actuator.driver).USES_GPIO


def write_record(config: Config) -> None:
    """Called once the daemon's drivers are up.  A run with no pin-driving
    actuator (a --sim run on the robot's own Pi) leaves the record of the
    last real run alone."""
    actuators = [a for a in config.actuators if drives_pins(a)]
    if not actuators:
        return
    path = statefile.state_dir(config.state_dir) / RECORD
    record = {
        "config": config.source,
        "gpio": dataclasses.asdict(config.gpio),
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


def _safe_choice(actuator: ActuatorConfig) -> str:
    """The `safe:` value that gives this actuator's safe state."""
    choices = ACTUATOR_KINDS[actuator.type].safe
    return next(choice for choice, state in choices.items() if state == actuator.safe_state)


def run(config_path: str | None) -> int:
    """The `--safe-stop` command; its log says what it found and what it did."""
    found = []
    configured_dir = None
    if config_path is not None:
        from_file = salvage_file(config_path)
        for problem in from_file.problems:
            log.warning("safe-stop: ignoring: %s", problem)
        configured_dir = from_file.state_dir
        found.append(from_file)
    record_path = statefile.state_dir(configured_dir) / RECORD
    try:
        found.insert(0, salvage(statefile.read_json(record_path), str(record_path)))
    except statefile.StateFileError as exc:
        log.warning("safe-stop: no record of the last run: %s", exc)

    targets = _targets(found)
    for source in found:
        for actuator in source.actuators:
            if not drives_pins(actuator):
                log.info("%s: simulated, no pins to stop", actuator.name)
    if not targets:
        if any(not s.problems for s in found):
            log.info("safe-stop: nothing to stop: no actuator drives a pin")
            return EXIT_STOPPED
        log.error(
            "safe-stop: nothing could be stopped: no usable actuator in %s and no record at %s",
            config_path or "(no config file)",
            record_path,
        )
        return EXIT_NOTHING
    stopped = sum(_stop_group(gpio, actuators) for gpio, actuators in targets.items())
    return EXIT_STOPPED if stopped else EXIT_NOTHING


def _targets(found: list) -> dict[GpioConfig, list[ActuatorConfig]]:
    """Each distinct pin-driving actuator once, grouped by pin factory (one
    factory at a time: a mock factory's state file must not be written by two)."""
    targets: dict[GpioConfig, list[ActuatorConfig]] = {}
    for source in found:
        for actuator in source.actuators:
            group = targets.setdefault(source.gpio, [])
            if drives_pins(actuator) and actuator not in group:
                group.append(actuator)
    return {gpio: group for gpio, group in targets.items() if group}


def _stop_group(gpio: GpioConfig, actuators: list[ActuatorConfig]) -> int:
    try:
        factory = make_pin_factory(gpio.pin_factory, gpio.mock_state_file, gpio.mock_input_file)
    except Exception as exc:
        log.error("safe-stop: %s", exc)
        return 0
    stopped = 0
    try:
        # One at a time: the config and the record may name the same pin twice.
        for item in actuators:
            try:
                actuator = build_actuator(item, factory)
                try:
                    actuator.drive(actuator.safe_state)
                    log.info("%s: %s (%s)", item.name, actuator.state, actuator.describe())
                    stopped += 1
                finally:
                    actuator.close()
            except Exception as exc:
                log.error("%s: could not be stopped: %s", item.name, exc)
    finally:
        factory.close()
    return stopped
