"""From YAML to a Config: loading a file, checking each section and item,
then the rules between items.

Problems are collected, not raised one at a time (a ConfigError lists them
all, each with file and line), so a user fixes a file in one pass.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from pathlib import Path
from typing import Any

from anse_hw import files
from anse_hw.config import items, rules, yamlfile
from anse_hw.config.schema import (
    ESTOP_OPTIONS,
    FOXGLOVE_OPTIONS,
    GPIO_OPTIONS,
    I2C_OPTIONS,
    MQTT_OPTIONS,
    RECORDING_OPTIONS,
    SERVER_OPTIONS,
    TOP_LEVEL,
    Checker,
    shown,
    unknown,
)
from anse_hw.errors import ConfigError
from anse_hw.model import (
    Config,
    EstopConfig,
    FoxgloveConfig,
    GpioConfig,
    I2cConfig,
    LimitConfig,
    MqttConfig,
    RecordingConfig,
    ReflexConfig,
    ServerConfig,
)
from anse_hw.options import a_path, credential_problem, robot_id_problem

__all__ = [
    "SIM_DEFAULTS",
    "SYSTEM_CONFIG",
    "build",
    "find_config_file",
    "load",
    "parse",
    "read",
    "robot_id",
    "sim_defaults",
    "state_dir",
    "yaml_problem",
]

SYSTEM_CONFIG = "/etc/anse-hw/config.yaml"
#: A password file holds one line; a bigger file is something else.
MAX_PASSWORD_BYTES = 4096

# The built-in `--sim` setup, identical to config/sim.yaml (a test keeps them equal).
SIM_DEFAULTS: dict[str, Any] = {
    "server": {"host": "0.0.0.0", "port": 8001},
    "sensors": [
        {
            "name": "distance_sensor",
            "type": "distance",
            "driver": "sim",
            "interval": 1.5,
            "profile": "seed",
        }
    ],
    "actuators": [{"name": "movement", "type": "motor", "driver": "sim"}],
    "reflexes": [
        {
            "name": "proximity_safeguard",
            "sensor": "distance_sensor",
            "below": 10,
            "actuator": "movement",
            "command": "stop",
        },
        {
            "name": "clear_to_move",
            "sensor": "distance_sensor",
            "above": 15,
            "actuator": "movement",
            "command": "move",
        },
    ],
}


def yaml_problem(source: str, problem: yamlfile.YamlProblem) -> str:
    """A loader problem as a config problem: 'robot.yaml:3: <message>'."""
    where = f"{source}:{problem.line}" if problem.line else source
    return f"{where}: {problem.message}"


def read(path: str | os.PathLike[str]) -> str:
    """The text of a config file, read within the limits of `yamlfile`."""
    try:
        return yamlfile.read_text(path)
    except yamlfile.YamlProblem as exc:
        raise ConfigError([yaml_problem(str(path), exc)]) from None


def load(path: str | os.PathLike[str], sim: bool = False) -> Config:
    return parse(read(path), str(Path(path)), sim)


def parse(text: str, source: str = "<config>", sim: bool = False) -> Config:
    """Validate YAML text into a Config; `sim` swaps every driver for its fake."""
    try:
        data, lines = yamlfile.load(text)
    except yamlfile.YamlProblem as exc:
        raise ConfigError([yaml_problem(source, exc)]) from None
    return dataclasses.replace(
        build(data if data is not None else {}, source, lines, sim), text=text
    )


def sim_defaults() -> Config:
    import yaml

    text = yaml.safe_dump(SIM_DEFAULTS, sort_keys=False)
    return dataclasses.replace(build(SIM_DEFAULTS, "built-in --sim defaults"), text=text)


def find_config_file(explicit: str | None) -> str | None:
    """--config, then $ANSE_HW_CONFIG, then /etc/anse-hw/config.yaml if present."""
    if explicit:
        return explicit
    if os.environ.get("ANSE_HW_CONFIG"):
        return os.environ["ANSE_HW_CONFIG"]
    return SYSTEM_CONFIG if os.path.exists(SYSTEM_CONFIG) else None


def build(
    data: Any, source: str, lines: dict[tuple, int] | None = None, sim: bool = False
) -> Config:
    """A Config from parsed YAML, or a ConfigError with every problem in it."""
    check = Checker(source, lines or {})
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping with {', '.join(TOP_LEVEL)}"])
    for key in data:
        if key not in TOP_LEVEL:
            check.problem((key,), unknown(key, TOP_LEVEL))
    server = _server(check, data)
    gpio = _gpio(check, data)
    i2c = I2cConfig(**(check.section(data, "i2c", I2C_OPTIONS) or {}))
    estop = _estop(check, data)
    sensors, actuators, reflexes, limits = _items(check, data, estop)
    found_state_dir = state_dir(check, data)
    found_robot_id = robot_id(check, data)
    mqtt = _mqtt(check, data, found_robot_id)
    recording = _recording(check, data)
    foxglove = _foxglove(check, data)
    if check.problems:
        raise ConfigError(check.problems)
    if sim:
        sensors, actuators = items.simulated(sensors), items.simulated(actuators)
        estop = None  # no real pins under --sim; the dashboard's E-stop remains
    return Config(
        source=source,
        robot_id=found_robot_id,
        server=server,
        gpio=gpio,
        i2c=i2c,
        sensors=tuple(sensors),
        actuators=tuple(actuators),
        reflexes=tuple(reflexes),
        limits=tuple(limits),
        estop=estop,
        state_dir=found_state_dir,
        mqtt=mqtt,
        recording=recording,
        foxglove=foxglove,
        lines=lines or {},
    )


def _server(check: Checker, data: dict) -> ServerConfig:
    server = check.section(data, "server", SERVER_OPTIONS) or {}
    if server.get("allowed_origins") is not None:
        server["allowed_origins"] = tuple(server["allowed_origins"])
    return ServerConfig(**server)


def _gpio(check: Checker, data: dict) -> GpioConfig:
    gpio = check.section(data, "gpio", GPIO_OPTIONS) or {}
    for key in ("mock_state_file", "mock_input_file"):
        if gpio.get(key) and gpio.get("pin_factory") != "mock":
            check.problem(("gpio", key), "is only used with pin_factory: mock")
    return GpioConfig(**gpio)


def _estop(check: Checker, data: dict) -> EstopConfig | None:
    if "estop" not in data:
        return None
    values = check.section(data, "estop", ESTOP_OPTIONS)
    return EstopConfig(**values) if values and values["pin"] is not None else None


def _items(check: Checker, data: dict, estop: EstopConfig | None) -> tuple[list, list, list, list]:
    """The sensors, actuators, reflexes and limits that are valid on their
    own, after the rules between them have been checked."""
    sensor_items = check.items(data, "sensors")
    if "sensors" not in data:
        check.problem((), "missing required key 'sensors' (a list of at least one sensor)")
    elif data["sensors"] == []:
        check.problem(("sensors",), "needs at least one sensor")
    # Each valid item keeps its YAML path, so later checks point at the right line
    # even when an item before it was rejected.
    sensors_at = [(at, s) for at, item in sensor_items if (s := items.sensor(check, at, item))]
    actuators_at = [
        (at, a)
        for at, item in check.items(data, "actuators")
        if (a := items.actuator(check, at, item))
    ]
    sensors = [s for _, s in sensors_at]
    actuators = [a for _, a in actuators_at]
    built_at = [
        (at, r)
        for at, item in check.items(data, "reflexes")
        if (r := items.reflex(check, at, item, sensors, actuators))
    ]
    reflexes_at = [(at, r) for at, r in built_at if isinstance(r, ReflexConfig)]
    limits = [r for _, r in built_at if isinstance(r, LimitConfig)]
    rules.check_across(check, sensors_at, actuators_at, reflexes_at, estop, built_at)
    return sensors, actuators, [r for _, r in reflexes_at], limits


def _recording(check: Checker, data: dict) -> RecordingConfig | None:
    if "recording" not in data:
        return None
    values = check.section(data, "recording", RECORDING_OPTIONS)
    return RecordingConfig(**values) if values and values["dir"] else None


def _foxglove(check: Checker, data: dict) -> FoxgloveConfig | None:
    if "foxglove" not in data:
        return None
    values = check.section(data, "foxglove", FOXGLOVE_OPTIONS)
    return FoxgloveConfig(**values) if values is not None else None


def _mqtt(check: Checker, data: dict, robot: str | None) -> MqttConfig | None:
    if "mqtt" not in data:
        return None
    values = check.section(data, "mqtt", MQTT_OPTIONS)
    if values is None:
        return None
    if values["password"] is not None and values["password_file"] is not None:
        check.problem(("mqtt", "password"), "give password or password_file, not both")
    if values["password_file"] is not None and not a_path(values["password_file"]):
        values["password"] = _password(check, values["password_file"])
    if (values["password"] or values["password_file"]) and not values["username"]:
        check.problem(("mqtt", "username"), "required with a password")
    values["robot_id"] = values["robot_id"] or robot or _hostname()
    return MqttConfig(**values)


def _password(check: Checker, path: str) -> str | None:
    """The first line of `password_file`, read without trusting the file
    (a FIFO, /dev/zero or a binary file named by mistake)."""
    try:
        text = files.read_text(path, MAX_PASSWORD_BYTES)
    except files.FileProblem as exc:
        check.problem(("mqtt", "password_file"), f"cannot read it: {exc}")
        return None
    password = text.strip()
    problem = credential_problem(password) if "\n" not in password else "holds more than one line"
    if problem:
        check.problem(("mqtt", "password_file"), f"{files.FileProblem(path, problem)}")
        return None
    return password


def _hostname() -> str:
    """The default robot_id: this machine's name, made safe for a topic and
    for Home Assistant's discovery ids (options.ha_id_problem)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "robot"


def state_dir(check: Checker, data: dict) -> str | None:
    """The top-level state_dir, if valid."""
    value = data.get("state_dir")
    if value is not None and not isinstance(value, str):
        check.problem(("state_dir",), f"expected a directory path, got {shown(value)}")
        return None
    problem = a_path(value) if value is not None else None
    if problem:
        check.problem(("state_dir",), f"{shown(value)} {problem}")
        return None
    return value


def robot_id(check: Checker, data: dict) -> str | None:
    """The top-level robot_id, if valid."""
    value = data.get("robot_id")
    if value is None:
        return None
    problem = robot_id_problem(value)
    if problem:
        check.problem(("robot_id",), problem)
        return None
    return value
