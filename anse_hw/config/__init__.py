"""The YAML configuration: loading, validation with file:line messages, defaults.

Validation is table-driven: the common keys are listed here and each driver
lists its own (`anse_hw.options.Option`), so an unknown key anywhere gets a
did-you-mean, and every message names file, line, key path and what was
expected.  Errors are collected, not raised one at a time, so a user fixes a
file in one pass.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anse_hw import files
from anse_hw.config import yamlfile
from anse_hw.drivers import registry
from anse_hw.errors import ConfigError
from anse_hw.kinds import ACTUATOR_KINDS, BINARY_THRESHOLD, SENSOR_KINDS, STOPPED, SensorKind
from anse_hw.options import REQUIRED, Option, a_path, bcm_pin, in_range, one_of

DEFAULT_MAX_AGE = 0.5
#: Sane bounds, in seconds.  Faster than 5 ms is more than any sensor we drive
#: delivers; a stop that waits longer than two minutes for silence is no stop.
INTERVAL_RANGE = (0.005, 60.0)
MAX_AGE_RANGE = (0.05, 120.0)
SYSTEM_CONFIG = "/etc/anse-hw/config.yaml"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8001
    max_clients: int = 1000
    max_message_bytes: int = 4096
    compression: bool = False
    ping_interval: float = 20.0
    client_buffer: int = 256
    dashboard: bool = True
    control_token_file: str | None = None
    heartbeat: float = 0.5
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class GpioConfig:
    pin_factory: str | None = None
    mock_state_file: str | None = None
    mock_input_file: str | None = None


@dataclass(frozen=True)
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    robot_id: str = ""
    topic_prefix: str = "anse"
    discovery_prefix: str | None = "homeassistant"
    queue: int = 1000
    tls: bool = False


@dataclass(frozen=True)
class RecordingConfig:
    dir: str
    max_mb: float = 100.0
    keep: int = 10


@dataclass(frozen=True)
class SensorConfig:
    name: str
    driver: str
    interval: float
    max_age: float
    options: dict[str, Any]
    type: str = "distance"

    @property
    def kind(self) -> SensorKind:
        return SENSOR_KINDS[self.type]


@dataclass(frozen=True)
class ActuatorConfig:
    name: str
    driver: str
    options: dict[str, Any]
    type: str = "motor"
    safe_state: str = STOPPED


@dataclass(frozen=True)
class ReflexConfig:
    name: str
    sensor: str
    actuator: str
    command: str  # one of the actuator kind's commands
    below: float | None = None
    above: float | None = None
    kind: SensorKind = SENSOR_KINDS["distance"]
    #: The state the command drives the actuator to.
    target: str = STOPPED
    #: It drives the actuator to its safe state: its sensor guards the actuator
    #: (silence or a fault puts the actuator in its safe state; S1, S2, S5, S6).
    guard: bool = True

    @property
    def condition(self) -> str:
        """Human text for the wire, as the seed writes it: "distance < 10cm"."""
        if self.below is not None:
            return self.kind.condition(self.sensor, "<", self.below)
        return self.kind.condition(self.sensor, ">", self.above)

    def holds(self, value: float) -> bool:
        return value < self.below if self.below is not None else value > self.above

    @property
    def region(self) -> tuple[float, float]:
        """The open interval of values for which the reflex fires."""
        if self.below is not None:
            return (-math.inf, self.below)
        return (self.above, math.inf)


@dataclass(frozen=True)
class Config:
    source: str
    server: ServerConfig = field(default_factory=ServerConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    sensors: tuple[SensorConfig, ...] = ()
    actuators: tuple[ActuatorConfig, ...] = ()
    reflexes: tuple[ReflexConfig, ...] = ()
    #: Where the daemon keeps what outlives a run (None: statefile.default_state_dir()).
    state_dir: str | None = None
    mqtt: MqttConfig | None = None
    recording: RecordingConfig | None = None
    #: The YAML it was read from (kept in recordings, so replay can rebuild it).
    text: str = ""
    #: This robot's identity: its state (latch, token, safe-stop record) is
    #: kept under it, and MQTT topics use it unless mqtt.robot_id says otherwise.
    robot_id: str | None = None
    #: The line of every key path in `text`, so a problem found later (a
    #: device `--check` cannot open) still points at its line.
    lines: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)

    def problem(self, path: tuple, message: str) -> str:
        """'robot.yaml:7: sensors[0].port: <message>', as the loader says it."""
        return located(self.source, self.lines, path, message)

    def where(self, path: tuple) -> str:
        """'robot.yaml:7', the line of `path` (or of its nearest parent)."""
        return where(self.source, self.lines, path)

    def watched_sensors(self) -> set[str]:
        """The guards: sensors whose silence puts an actuator in its safe state (S2)."""
        return {r.sensor for r in self.reflexes if r.guard}


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

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _name(value: str) -> str | None:
    return None if _NAME.match(value) else "must be 1-64 letters, digits, '_', '-' or '.'"


def port_problem(value: int) -> str | None:
    """A port to connect to (mqtt.port, `anse-hw health --port`)."""
    return None if 1 <= value <= 65535 else "must be a TCP port from 1 to 65535"


def listen_port_problem(value: int) -> str | None:
    """server.port and the daemon's --port: 0 asks the system for a free port,
    which the daemon then prints (tests and several instances on one host)."""
    if 0 <= value <= 65535:
        return None
    return "must be a TCP port from 1 to 65535, or 0 for any free port"


#: `server.host` values that mean every interface: this machine is reached
#: through loopback.
ANY_ADDRESS = ("0.0.0.0", "::", "")

#: A DNS label; `_` too, which RFC 1123 host names lack but container
#: networks use for service names (`mqtt_broker` in a compose file).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def host_problem(value: str) -> str | None:
    """A host to connect to (mqtt.host): an IP address, or a host name of
    DNS labels.  Anything else fails only when the connection is tried,
    inside a task that no one watches at start."""
    if not value:
        return "is empty; give a host name or an IP address"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value.removesuffix(".")
    if len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return (
        "must be an IP address or a host name: dot-separated parts of 1 to 63 letters, "
        "digits, '-' and '_', at most 253 characters"
    )


def listen_host_problem(value: str) -> str | None:
    """server.host and the daemon's --host: the rule of `host_problem`, with
    a hint for the empty string (which the socket layer reads as "every
    interface", and which looks like a forgotten value)."""
    if not value:
        return "is empty; write 0.0.0.0 (every IPv4 interface) or :: (every interface)"
    return host_problem(value)


def _credential(value: str) -> str | None:
    """A broker user name or password: MQTT strings cannot hold NUL."""
    if not value:
        return "is empty"
    if "\0" in value or len(value) > 1024:
        return "must be at most 1024 characters, without NUL"
    return None


def _origins(values: list) -> str | None:
    bad = [v for v in values if not isinstance(v, str) or not re.match(r"^https?://[^/]+$", v)]
    return f"entries must look like https://host[:port], got {bad[0]!r}" if bad else None


def _seconds(low: float, high: float):
    return in_range(low, high, " seconds")


SERVER_OPTIONS = (
    Option(
        "host",
        str,
        "0.0.0.0",
        "address to listen on (0.0.0.0 or :: for every interface)",
        listen_host_problem,
    ),
    Option(
        "port",
        int,
        8001,
        "TCP port for the dashboard and the event stream (0: any free port, printed at start)",
        listen_port_problem,
    ),
    Option(
        "max_clients",
        int,
        1000,
        "connections beyond this get HTTP 503 (1 to 10000: each is a file descriptor "
        "and a send buffer, and a Pi runs out of both long before 10000)",
        in_range(1, 10_000),
    ),
    Option(
        "max_message_bytes",
        int,
        4096,
        "largest message a client may send (512 to 1048576: an operator's command "
        "is under 200 bytes; more only lets a client make the daemon buffer it)",
        in_range(512, 1024 * 1024),
    ),
    Option("compression", bool, False, "permessage-deflate (costs CPU per client)"),
    Option(
        "ping_interval",
        (int, float),
        20.0,
        "seconds between keepalive pings; a client that does not answer within as long "
        "again is dropped (1 to 600: faster drops clients on a busy Wi-Fi link, slower "
        "keeps a dead client's slot for up to 20 minutes)",
        _seconds(1, 600),
    ),
    Option(
        "client_buffer",
        int,
        256,
        "reflex/actuator events a client may fall behind before it is dropped "
        "(1 to 100000: a few hundred bytes each, for every slow client)",
        in_range(1, 100_000),
    ),
    Option("dashboard", bool, True, "serve the dashboard over HTTP on the same port"),
    Option(
        "control_token_file",
        str,
        None,
        "the operator token (created, mode 0600, when missing); default: "
        "control-token in the robot's state directory; $ANSE_HW_CONTROL_TOKEN overrides",
        a_path,
    ),
    Option(
        "heartbeat",
        (int, float),
        0.5,
        "a manual move/on lasts this many seconds without a heartbeat",
        _seconds(0.1, 10.0),
    ),
    Option(
        "allowed_origins",
        list,
        [],
        "other origins whose pages may command, e.g. https://robot.example.org",
        _origins,
    ),
)
GPIO_OPTIONS = (
    Option(
        "pin_factory",
        str,
        None,
        "lgpio | rpigpio | pigpio | native | mock",
        one_of("lgpio", "rpigpio", "pigpio", "native", "mock"),
    ),
    Option(
        "mock_state_file",
        str,
        None,
        "pin_factory: mock — write pin states to this JSON file",
        a_path,
    ),
    Option(
        "mock_input_file",
        str,
        None,
        'pin_factory: mock — drive input pins from this JSON file ({"GPIO5": 0})',
        a_path,
    ),
)
SENSOR_COMMON = (
    Option("name", str, help="unique name, shown on the stream", check=_name),
    Option("type", str, "distance", " | ".join(SENSOR_KINDS), one_of(*SENSOR_KINDS)),
    Option("driver", str, help=" | ".join(registry.names(registry.SENSOR_DRIVERS))),
    Option("interval", (int, float), None, "seconds between readings", _seconds(*INTERVAL_RANGE)),
    Option(
        "max_age",
        (int, float),
        None,
        "seconds without a valid reading before the sensor is stale",
        _seconds(*MAX_AGE_RANGE),
    ),
)
ACTUATOR_COMMON = (
    Option("name", str, help="unique name, shown on the stream", check=_name),
    Option("type", str, "motor", " | ".join(ACTUATOR_KINDS), one_of(*ACTUATOR_KINDS)),
    Option("driver", str, help=" | ".join(registry.names(registry.ACTUATOR_DRIVERS))),
    Option("safe", str, None, "output: off | on — its state when in doubt (default off)"),
)
REFLEX_OPTIONS = (
    Option("name", str, help="shown on the stream as reflex_name", check=_name),
    Option("sensor", str, help="name of a configured sensor"),
    Option("actuator", str, help="name of a configured actuator"),
    Option("command", str, help="motor: stop | move; output: on | off"),
    Option("below", (int, float), None, "numeric sensors: fires when the reading is below this"),
    Option("above", (int, float), None, "numeric sensors: fires when the reading is above this"),
    Option("active", bool, None, "binary sensors: fires when the sensor is active (or not)"),
)


def _topic_part(value: str) -> str | None:
    bad = set(value) & set("+#/\0") or not value
    return "must be non-empty, without / + # or NUL" if bad else None


MQTT_OPTIONS = (
    Option("host", str, "localhost", "the broker's host name or address", host_problem),
    Option("port", int, 1883, "the broker's port (8883 with tls)", port_problem),
    Option("username", str, None, "broker user name", _credential),
    Option("password", str, None, "broker password (better: password_file)", _credential),
    Option("password_file", str, None, "a file holding the broker password", a_path),
    Option("robot_id", str, None, "this robot in topics (default: the host name)", _topic_part),
    Option("topic_prefix", str, "anse", "topics are <topic_prefix>/<robot_id>/...", _topic_part),
    Option(
        "discovery_prefix",
        str,
        "homeassistant",
        "Home Assistant discovery prefix; null turns discovery off",
        _topic_part,
        null_is_off=True,
    ),
    Option(
        "queue",
        int,
        1000,
        "events waiting for the broker before telemetry is dropped "
        "(1 to 100000: a few hundred bytes each while the broker is away)",
        in_range(1, 100_000),
    ),
    Option("tls", bool, False, "connect with TLS (system CA certificates)"),
)
RECORDING_OPTIONS = (
    Option("dir", str, help="where the MCAP files go", check=a_path),
    Option(
        "max_mb",
        (int, float),
        100.0,
        "start a new file beyond this size (0.01 to 10000 MB: a bigger file is "
        "hard to copy off an SD card or open in a viewer)",
        in_range(0.01, 10_000, " MB"),
    ),
    Option(
        "keep",
        int,
        10,
        "how many files to keep, the oldest go (1 to 1000)",
        in_range(1, 1000),
    ),
)
TOP_LEVEL = (
    "robot_id",
    "server",
    "gpio",
    "sensors",
    "actuators",
    "reflexes",
    "state_dir",
    "mqtt",
    "recording",
)
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def _expected(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _type_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _nearest(word: str, choices: list[str]) -> str | None:
    """The closest choice to a misspelt word (difflib is loaded only for a mistake)."""
    import difflib

    hint = difflib.get_close_matches(word, choices, n=1)
    return hint[0] if hint else None


def _unknown(key: Any, known: Iterable[str]) -> str:
    """The unknown-key message: the nearest valid key, or the list when none is near."""
    known = list(known)
    hint = _nearest(str(key), known)
    tip = f"did you mean '{hint}'?" if hint else f"expected one of: {', '.join(known)}"
    return f"unknown key '{key}'; {tip}"


def _path_text(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def where(source: str, lines: dict[tuple, int], path: tuple) -> str:
    """'robot.yaml:7': the line of `path`, or of its nearest parent in the file."""
    probe = path
    line = lines.get(probe)
    while line is None and probe:
        probe = probe[:-1]
        line = lines.get(probe)
    return f"{source}:{line}" if line else source


def located(source: str, lines: dict[tuple, int], path: tuple, message: str) -> str:
    """A problem as the loader says it: 'robot.yaml:7: sensors[0].port: ...'."""
    return f"{where(source, lines, path)}: {_path_text(path)}: {message}"


class _Checker:
    """Walks the parsed YAML, collecting problems with their line numbers."""

    def __init__(self, source: str, lines: dict[tuple, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[str] = []

    def problem(self, path: tuple, message: str) -> None:
        self.problems.append(located(self.source, self.lines, path, message))

    def mapping(
        self, value: Any, path: tuple, options: tuple[Option, ...], extra: tuple[Option, ...] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping of keys, got {type(value).__name__}")
            return None
        known = {o.key: o for o in (*options, *extra)}
        result: dict[str, Any] = {}
        for key in value:
            if key not in known:
                self.problem((*path, key), _unknown(key, known))
        for key, option in known.items():
            if key in value and value[key] is None and option.null_is_off:
                result[key] = None
                continue
            if key not in value or value[key] is None:
                if option.default is REQUIRED:
                    self.problem(path, f"missing required key '{key}' ({option.help})")
                result[key] = None if option.default is REQUIRED else option.default
                continue
            item = value[key]
            if not _type_ok(item, option.kind):
                self.problem(
                    (*path, key),
                    f"expected {_expected(option.kind)}, got {_shown(item)} ({option.help})",
                )
                result[key] = None
                continue
            problem = option.check(item) if option.check else None
            if problem:
                self.problem((*path, key), f"{_shown(item)} {problem}")
            result[key] = float(item) if option.kind == (int, float) else item
        return result

    def section(self, data: dict, key: str, options: tuple[Option, ...]) -> dict[str, Any] | None:
        """A top-level mapping; absent or null is every default.  Anything
        else that is not a mapping (`mqtt: []`, `server: ''`) is an error,
        never read as "the defaults" (which for mqtt would turn it on)."""
        value = data.get(key)
        return self.mapping({} if value is None else value, (key,), options)

    def items(self, data: dict, key: str) -> list[tuple[tuple, Any]]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem((key,), f"expected a list, got {type(value).__name__}")
            return []
        return [((key, i), item) for i, item in enumerate(value)]


def parse(text: str, source: str = "<config>", sim: bool = False) -> Config:
    """Validate YAML text into a Config; `sim` swaps every driver for its fake."""
    try:
        data, lines = yamlfile.load(text)
    except yamlfile.YamlProblem as exc:
        raise ConfigError([_located(source, exc)]) from None
    return dataclasses.replace(
        build(data if data is not None else {}, source, lines, sim), text=text
    )


def _located(source: str, problem: yamlfile.YamlProblem) -> str:
    where = f"{source}:{problem.line}" if problem.line else source
    return f"{where}: {problem.message}"


def build(
    data: Any, source: str, lines: dict[tuple, int] | None = None, sim: bool = False
) -> Config:
    check = _Checker(source, lines or {})
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping with {', '.join(TOP_LEVEL)}"])
    for key in data:
        if key not in TOP_LEVEL:
            check.problem((key,), _unknown(key, TOP_LEVEL))
    server = check.section(data, "server", SERVER_OPTIONS) or {}
    gpio = check.section(data, "gpio", GPIO_OPTIONS) or {}
    for key in ("mock_state_file", "mock_input_file"):
        if gpio.get(key) and gpio.get("pin_factory") != "mock":
            check.problem(("gpio", key), "is only used with pin_factory: mock")
    sensor_items = check.items(data, "sensors")
    if "sensors" not in data:
        check.problem((), "missing required key 'sensors' (a list of at least one sensor)")
    elif data["sensors"] == []:
        check.problem(("sensors",), "needs at least one sensor")
    # Each valid item keeps its YAML path, so later checks point at the right line
    # even when an item before it was rejected.
    sensors_at = [(at, s) for at, item in sensor_items if (s := _sensor(check, at, item))]
    actuators_at = [
        (at, a) for at, item in check.items(data, "actuators") if (a := _actuator(check, at, item))
    ]
    sensors = [s for _, s in sensors_at]
    actuators = [a for _, a in actuators_at]
    reflexes_at = [
        (at, r)
        for at, item in check.items(data, "reflexes")
        if (r := _reflex(check, at, item, sensors, actuators))
    ]
    for placed in (sensors_at, actuators_at, reflexes_at):
        _unique(check, placed)
    _pins_used_once(check, [*sensors_at, *actuators_at])
    _shared_devices(check, sensors_at)
    _no_overlapping_pairs(check, reflexes_at)
    reflexes = [r for _, r in reflexes_at]
    state_dir = _state_dir(check, data)
    robot_id = _robot_id(check, data)
    mqtt = _mqtt(check, data, robot_id)
    recording = None
    if "recording" in data:
        values = check.section(data, "recording", RECORDING_OPTIONS)
        if values and values["dir"]:
            recording = RecordingConfig(**values)
    if check.problems:
        raise ConfigError(check.problems)
    if sim:
        sensors, actuators = _simulated(sensors), _simulated(actuators)
    if server.get("allowed_origins") is not None:
        server["allowed_origins"] = tuple(server["allowed_origins"])
    return Config(
        source,
        ServerConfig(**server),
        GpioConfig(**gpio),
        tuple(sensors),
        tuple(actuators),
        tuple(reflexes),
        state_dir,
        mqtt,
        recording,
        robot_id=robot_id,
        lines=lines or {},
    )


def _mqtt(check: _Checker, data: dict, robot_id: str | None) -> MqttConfig | None:
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
    values["robot_id"] = values["robot_id"] or robot_id or _hostname()
    return MqttConfig(**values)


#: A password file holds one line; a bigger file is something else.
MAX_PASSWORD_BYTES = 4096


def _password(check: _Checker, path: str) -> str | None:
    """The first line of `password_file`, read without trusting the file
    (a FIFO, /dev/zero or a binary file named by mistake)."""
    try:
        text = files.read_text(path, MAX_PASSWORD_BYTES)
    except files.FileProblem as exc:
        check.problem(("mqtt", "password_file"), f"cannot read it: {exc}")
        return None
    password = text.strip()
    problem = _credential(password) if "\n" not in password else "holds more than one line"
    if problem:
        check.problem(("mqtt", "password_file"), f"{files.FileProblem(path, problem)}")
        return None
    return password


def _hostname() -> str:
    """The default robot_id: this machine's name, made safe for a topic."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "robot"


def _state_dir(check: _Checker, data: dict) -> str | None:
    value = data.get("state_dir")
    if value is not None and not isinstance(value, str):
        check.problem(("state_dir",), f"expected a directory path, got {_shown(value)}")
        return None
    problem = a_path(value) if value is not None else None
    if problem:
        check.problem(("state_dir",), f"{_shown(value)} {problem}")
        return None
    return value


def _shown(value: Any) -> str:
    """A value as a message quotes it: a 300-character host is cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


#: A robot_id names a directory and an MQTT topic level: nothing else fits both.
ROBOT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _robot_id(check: _Checker, data: dict) -> str | None:
    """The top-level robot_id, if valid.  `sim` and `sim-…` name the state of
    runs on fakes, so a real robot cannot take them."""
    value = data.get("robot_id")
    if value is None:
        return None
    if not isinstance(value, str) or not ROBOT_ID.fullmatch(value):
        check.problem(("robot_id",), f"expected 1-64 of A-Z a-z 0-9 _ -, got {value!r}")
        return None
    if value == "sim" or value.startswith("sim-"):
        check.problem(("robot_id",), f"{value!r} is reserved for runs on fakes (--sim)")
        return None
    return value


@dataclass(frozen=True)
class Salvage:
    """What `--safe-stop` can still use from a file that may be broken: the
    actuators that are valid on their own, and the pin factory to drive them."""

    source: str
    gpio: GpioConfig
    actuators: tuple[ActuatorConfig, ...]
    state_dir: str | None
    problems: list[str]
    robot_id: str | None = None


def salvage(data: Any, source: str, lines: dict[tuple, int] | None = None) -> Salvage:
    """Each actuator on its own: one broken item, or a typo in a reflex, costs
    nothing else.  A broken gpio section falls back to gpiozero's own choice."""
    check = _Checker(source, lines or {})
    if not isinstance(data, dict):
        check.problem((), "expected a mapping with gpio and actuators")
        return Salvage(source, GpioConfig(), (), None, check.problems)
    before = len(check.problems)
    gpio = check.mapping(data.get("gpio") or {}, ("gpio",), GPIO_OPTIONS)
    usable_gpio = GpioConfig(**gpio) if gpio and len(check.problems) == before else GpioConfig()
    actuators = []
    for at, item in check.items(data, "actuators"):
        before = len(check.problems)
        actuator = _actuator(check, at, item)
        if actuator is not None and len(check.problems) == before:
            actuators.append(actuator)
    state_dir = _state_dir(check, data)
    robot_id = _robot_id(check, data)
    return Salvage(source, usable_gpio, tuple(actuators), state_dir, check.problems, robot_id)


def salvage_file(path: str | os.PathLike[str]) -> Salvage:
    source = str(path)
    try:
        text = read(path)
    except ConfigError as exc:
        return Salvage(source, GpioConfig(), (), None, exc.problems)
    try:
        data, lines = yamlfile.load(text)
    except yamlfile.YamlProblem as exc:
        # A syntax error in one section must not hide the actuators in another.
        data, lines = _sections_that_parse(text)
        found = salvage(data, source, lines)
        return dataclasses.replace(found, problems=[_located(source, exc), *found.problems])
    return salvage(data, source, lines)


def _sections_that_parse(text: str) -> tuple[dict, dict[tuple, int]]:
    """Parse each top-level block (a line starting in column 0) on its own."""
    starts = [i for i, line in enumerate(text.splitlines()) if line[:1].isalpha()]
    all_lines = text.splitlines()
    data: dict = {}
    lines: dict[tuple, int] = {}
    for start, end in zip(starts, [*starts[1:], len(all_lines)], strict=True):
        try:
            part, part_lines = yamlfile.load("\n".join(all_lines[start:end]))
        except yamlfile.YamlProblem:
            continue
        if isinstance(part, dict):
            data.update(part)
            lines.update({path: line + start for path, line in part_lines.items()})
    return data, lines


def _device(
    check: _Checker,
    path: tuple,
    item: Any,
    common: tuple[Option, ...],
    drivers: tuple[type, ...],
) -> tuple[dict, type, dict] | None:
    """Common keys + the driver's own, for the driver that serves this kind."""
    if not isinstance(item, dict):
        check.problem(path, f"expected a mapping, got {item!r}")
        return None
    kind = item.get("type", next(o.default for o in common if o.key == "type"))
    driver = item.get("driver")
    cls = registry.find(drivers, kind, driver) if isinstance(driver, str) else None
    values = check.mapping(item, path, common, cls.OPTIONS if cls else ())
    if values is None or values["name"] is None or values["type"] is None:
        return None
    if cls is None:
        if isinstance(driver, str):
            check.problem(
                (*path, "driver"),
                f"'{driver}' must be one of {', '.join(registry.names(drivers, kind))} "
                f"(the drivers for type {kind})",
            )
        return None
    options = {o.key: values.pop(o.key) for o in cls.OPTIONS}
    if all(options[o.key] is not None for o in cls.OPTIONS if o.default is REQUIRED):
        for key, problem in cls.problems(options):
            check.problem((*path, key), problem)
    return values, cls, options


def _simulated(devices: list) -> list:
    """--sim: every driver swapped for the fake of its kind, with the fake's
    defaults; names, kinds, pace, safe states and reflexes stay as configured."""
    swapped = []
    for device in devices:
        if device.driver != "sim":
            drivers = (
                registry.SENSOR_DRIVERS
                if isinstance(device, SensorConfig)
                else registry.ACTUATOR_DRIVERS
            )
            fake = registry.find(drivers, device.type, "sim")
            options = {o.key: o.default for o in fake.OPTIONS}
            device = dataclasses.replace(device, driver="sim", options=options)
        swapped.append(device)
    return swapped


def _sensor(check: _Checker, path: tuple, item: Any) -> SensorConfig | None:
    built = _device(check, path, item, SENSOR_COMMON, registry.SENSOR_DRIVERS)
    if built is None:
        return None
    values, cls, options = built
    interval = values["interval"] or cls.DEFAULT_INTERVAL
    max_age = values["max_age"] or max(DEFAULT_MAX_AGE, 3 * interval)
    if max_age <= interval:
        check.problem(
            (*path, "max_age"),
            f"{max_age:g} s must be longer than the interval ({interval:g} s), or the sensor "
            "is stale between every two readings (3 intervals is a good value)",
        )
    return SensorConfig(
        values["name"], cls.DRIVER, float(interval), float(max_age), options, values["type"]
    )


def _actuator(check: _Checker, path: tuple, item: Any) -> ActuatorConfig | None:
    built = _device(check, path, item, ACTUATOR_COMMON, registry.ACTUATOR_DRIVERS)
    if built is None:
        return None
    values, cls, options = built
    kind = ACTUATOR_KINDS[values["type"]]
    if values["safe"] is not None and values["safe"] not in kind.safe:
        check.problem(
            (*path, "safe"),
            f"'{values['safe']}' must be one of {', '.join(kind.safe)} for a {kind.name}",
        )
        return None
    return ActuatorConfig(
        values["name"], cls.DRIVER, options, values["type"], kind.safe_state(values["safe"])
    )


def _reflex(
    check: _Checker,
    path: tuple,
    item: Any,
    sensors: list[SensorConfig],
    actuators: list[ActuatorConfig],
) -> ReflexConfig | None:
    values = check.mapping(item, path, REFLEX_OPTIONS)
    if values is None:
        return None
    ok = True
    for key, names in (
        ("sensor", [s.name for s in sensors]),
        ("actuator", [a.name for a in actuators]),
    ):
        if values[key] is not None and values[key] not in names:
            hint = _nearest(values[key], names)
            tip = f"; did you mean '{hint}'?" if hint else ""
            check.problem(
                (*path, key),
                f"no {key} named '{values[key]}' is configured "
                f"(configured: {', '.join(names) or 'none'}){tip}",
            )
            ok = False
    if not ok or any(values[k] is None for k in ("name", "sensor", "actuator", "command")):
        return None
    kind = next(s.kind for s in sensors if s.name == values["sensor"])
    actuator = next(a for a in actuators if a.name == values["actuator"])
    commands = ACTUATOR_KINDS[actuator.type].commands
    if values["command"] not in commands:
        check.problem(
            (*path, "command"),
            f"'{values['command']}' is not a command for {actuator.type} "
            f"'{actuator.name}'; it takes {' | '.join(commands)}",
        )
        return None
    below, above = _threshold(check, path, values, kind)
    if below is None and above is None:
        return None
    target = commands[values["command"]]
    return ReflexConfig(
        values["name"],
        values["sensor"],
        values["actuator"],
        values["command"],
        below,
        above,
        kind,
        target,
        guard=target == actuator.safe_state,
    )


def _threshold(
    check: _Checker, path: tuple, values: dict, kind: SensorKind
) -> tuple[float | None, float | None]:
    """(below, above); a binary sensor's `active` becomes a threshold between 0 and 1."""
    given = [k for k in ("below", "above", "active") if values[k] is not None]
    if kind.binary:
        if given != ["active"]:
            check.problem(
                path,
                f"a binary sensor takes 'active: true' or 'active: false', "
                f"not {' and '.join(given) or 'nothing'}",
            )
            return None, None
        return (None, BINARY_THRESHOLD) if values["active"] else (BINARY_THRESHOLD, None)
    if len(given) != 1 or given == ["active"]:
        check.problem(
            path,
            f"give exactly one of 'below' or 'above' (the threshold in "
            f"{kind.unit}); 'active' is for binary sensors",
        )
        return None, None
    key = given[0]
    threshold = values[key]
    if not kind.low < threshold < kind.high:
        check.problem(
            (*path, key),
            f"{threshold:g} is outside what a {kind.name} sensor can read "
            f"({kind.low:g} to {kind.high:g} {kind.unit}), so the reflex would "
            f"{'never' if (key == 'below') == (threshold <= kind.low) else 'always'} fire",
        )
        return None, None
    return (threshold, None) if key == "below" else (None, threshold)


def _no_overlapping_pairs(check: _Checker, placed: list[tuple[tuple, ReflexConfig]]) -> None:
    """A guard and a reflex that drives the same actuator out of its safe state,
    on the same sensor, must never both hold: where they overlap the actuator
    flaps at the rate of the readings."""
    for at, move in placed:
        if move.guard:
            continue
        for _, stop in placed:
            if not stop.guard or (stop.sensor, stop.actuator) != (move.sensor, move.actuator):
                continue
            low = max(stop.region[0], move.region[0])
            high = min(stop.region[1], move.region[1])
            if low < high:
                check.problem(
                    at,
                    f"'{move.name}' ({move.condition}) and '{stop.name}' ({stop.condition}) "
                    f"both hold between {low:g} and {high:g}: {move.actuator} would flap; "
                    "the resume threshold must lie beyond the stop threshold (hysteresis)",
                )


def _shared_devices(check: _Checker, placed: list[tuple[tuple, SensorConfig]]) -> None:
    """Rules between sensors of one driver (two on one serial port, ...)."""
    for cls in registry.SENSOR_DRIVERS:
        mine = [(at, s) for at, s in placed if s.driver == cls.DRIVER and s.type in cls.KINDS]
        for index, key, problem in cls.problems_across([(s.name, s.options) for _, s in mine]):
            check.problem((*mine[index][0], key), problem)


def _unique(check: _Checker, placed: list[tuple[tuple, Any]]) -> None:
    seen: set[str] = set()
    for at, item in placed:
        if item.name in seen:
            check.problem((*at, "name"), f"'{item.name}' is used twice; names must be unique")
        seen.add(item.name)


def _pins_used_once(
    check: _Checker, placed: list[tuple[tuple, SensorConfig | ActuatorConfig]]
) -> None:
    owners: dict[int, str] = {}
    for at, device in placed:
        sensor = isinstance(device, SensorConfig)
        drivers = registry.SENSOR_DRIVERS if sensor else registry.ACTUATOR_DRIVERS
        for option in registry.find(drivers, device.type, device.driver).OPTIONS:
            pin = device.options.get(option.key)
            if not option.pin or pin is None or bcm_pin(pin):
                continue
            if pin in owners:
                check.problem((*at, option.key), f"GPIO{pin} is already used by {owners[pin]}")
            else:
                owners[pin] = f"{device.name}.{option.key}"


def read(path: str | os.PathLike[str]) -> str:
    """The text of a config file, read within the limits of `yamlfile`."""
    try:
        return yamlfile.read_text(path)
    except yamlfile.YamlProblem as exc:
        raise ConfigError([_located(str(path), exc)]) from None


def load(path: str | os.PathLike[str], sim: bool = False) -> Config:
    return parse(read(path), str(Path(path)), sim)


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


def describe(config: Config) -> str:
    """The resolved setup, as `--check` prints it."""
    s = config.server
    out = [
        f"config: {config.source}",
        f"server: ws://{s.host}:{s.port}  (max {s.max_clients} clients, "
        f"dashboard {'on' if s.dashboard else 'off'})",
        f"gpio: pin_factory {config.gpio.pin_factory or 'gpiozero default'}",
    ]
    out.append("sensors:")
    for sensor in config.sensors:
        opts = ", ".join(f"{k}={v}" for k, v in sensor.options.items() if v is not None)
        out.append(
            f"  {sensor.name}: {sensor.type} via {sensor.driver} every {sensor.interval:g}s,"
            f" stale after {sensor.max_age:g}s ({opts})"
        )
    out.append("actuators:")
    for act in config.actuators:
        opts = ", ".join(f"{k}={v}" for k, v in act.options.items() if v is not None)
        out.append(f"  {act.name}: {act.type} via {act.driver}, safe {act.safe_state} ({opts})")
    out.append("reflexes:")
    for r in config.reflexes:
        role = "guard" if r.guard else "resume"
        out.append(f"  {r.name}: {r.sensor} {r.condition} -> {r.command} {r.actuator} ({role})")
    if config.mqtt:
        m = config.mqtt
        discovery = (
            f"discovery under {m.discovery_prefix}/" if m.discovery_prefix else "no discovery"
        )
        user = f" as user {m.username}" if m.username else ""
        out.append(
            f"mqtt: {m.host}:{m.port}{user}, topics {m.topic_prefix}/{m.robot_id}/..., {discovery}"
        )
    watched = sorted(config.watched_sensors())
    out.append(
        f"guards (silence puts an actuator in its safe state): {', '.join(watched) or 'none'}"
    )
    return "\n".join(out)
