"""The configuration model: what a robot is, once its YAML has been checked.

Plain frozen dataclasses that the engine, the world model and every sink
read.  Each field that is also a YAML key says so in its metadata (made by
`setting`): its help, its check and, through the field's own default, its
default.  anse_hw.config derives the YAML option tables, the validator's
messages and docs/configuration.md from these fields, so a default or a
bound is written once, here.

Nothing here reads a file or knows a driver: the core imports this module,
and the config loader (PyYAML, the driver registry) stays out of the core.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anse_hw.budget import MAX_DELAY
from anse_hw.conditions import Condition, Leaf
from anse_hw.filters import FilterChain
from anse_hw.kinds import ACTUATOR_KINDS, OFF, ON, SENSOR_KINDS, STOPPED, SensorKind
from anse_hw.options import (
    REQUIRED,
    a_path,
    bcm_pin,
    credential_problem,
    ha_id_problem,
    host_problem,
    in_range,
    listen_host_problem,
    listen_port_problem,
    name_problem,
    one_of,
    origins_problem,
    port_problem,
    robot_id_problem,
    seconds,
    topic_part_problem,
)
from anse_hw.wheels import (
    DEFAULT_MAX_RPS,
    DEFAULT_STALL_AFTER,
    encoders_problem,
    stall_problem,
)

__all__ = [
    "ANY_ADDRESS",
    "DEFAULT_MAX_AGE",
    "INTERVAL_RANGE",
    "MAX_AGE_RANGE",
    "ActuatorConfig",
    "Config",
    "EstopConfig",
    "GpioConfig",
    "I2cConfig",
    "LimitConfig",
    "MqttConfig",
    "RecordingConfig",
    "ReflexConfig",
    "SensorConfig",
    "ServerConfig",
    "located",
    "setting",
    "where",
]

DEFAULT_MAX_AGE = 0.5
#: Sane bounds, in seconds.  Faster than 5 ms is more than any sensor we drive
#: delivers; a stop that waits longer than two minutes for silence is no stop.
INTERVAL_RANGE = (0.005, 60.0)
MAX_AGE_RANGE = (0.05, 120.0)
#: `server.host` values that mean every interface: this machine is reached
#: through loopback.
ANY_ADDRESS = ("0.0.0.0", "::", "")
#: A YAML default the build works out when the key is absent (from the
#: driver, the kind or the host name); the field itself has none.
WORKED_OUT: Any = None


def setting(
    default: Any = REQUIRED,
    help: str = "",
    check: Callable[[Any], str | None] | None = None,
    *,
    key: str | None = None,
    yaml_default: Any = REQUIRED,
    null_is_off: bool = False,
    yaml_kind: type | tuple[type, ...] | None = None,
) -> Any:
    """A dataclass field that is also a YAML key (`key`, else the field's name).

    `default` is the field's default and the YAML default both, unless the
    YAML key has a default of its own (`yaml_default`: WORKED_OUT for a value
    the build derives).  `check` returns what is wrong with a value, or None.
    `yaml_kind`: the YAML types it takes, where the field's own type is what
    the build makes of them (a servo's `safe: 90` becomes the state "90").
    """
    metadata = {
        "help": help,
        "check": check,
        "key": key,
        "yaml_default": default if yaml_default is REQUIRED else yaml_default,
        "null_is_off": null_is_off,
        "yaml_kind": yaml_kind,
    }
    if default is REQUIRED:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ServerConfig:
    host: str = setting(
        "0.0.0.0", "address to listen on (0.0.0.0 or :: for every interface)", listen_host_problem
    )
    port: int = setting(
        8001,
        "TCP port for the dashboard and the event stream (0: any free port, printed at start)",
        listen_port_problem,
    )
    max_clients: int = setting(
        1000,
        "connections beyond this get HTTP 503 (1 to 10000: each is a file descriptor "
        "and a send buffer, and a Pi runs out of both long before 10000)",
        in_range(1, 10_000),
    )
    max_message_bytes: int = setting(
        4096,
        "largest message a client may send (512 to 1048576: an operator's command "
        "is under 200 bytes; more only lets a client make the daemon buffer it)",
        in_range(512, 1024 * 1024),
    )
    compression: bool = setting(False, "permessage-deflate (costs CPU per client)")
    ping_interval: float = setting(
        20.0,
        "seconds between keepalive pings; a client that does not answer within as long "
        "again is dropped (1 to 600: faster drops clients on a busy Wi-Fi link, slower "
        "keeps a dead client's slot for up to 20 minutes)",
        seconds(1, 600),
    )
    client_buffer: int = setting(
        256,
        "reflex/actuator events a client may fall behind before it is dropped "
        "(1 to 100000: a few hundred bytes each, for every slow client)",
        in_range(1, 100_000),
    )
    dashboard: bool = setting(True, "serve the dashboard over HTTP on the same port")
    control_token_file: str | None = setting(
        None,
        "the operator token (created, mode 0600, when missing); default: "
        "control-token in the robot's state directory; $ANSE_HW_CONTROL_TOKEN overrides",
        a_path,
    )
    heartbeat: float = setting(
        0.5, "a manual move/on lasts this many seconds without a heartbeat", seconds(0.1, 10.0)
    )
    allowed_origins: tuple[str, ...] = setting(
        (), "other origins whose pages may command, e.g. https://robot.example.org", origins_problem
    )


@dataclass(frozen=True)
class GpioConfig:
    pin_factory: str | None = setting(
        None,
        "lgpio | rpigpio | pigpio | native | mock",
        one_of("lgpio", "rpigpio", "pigpio", "native", "mock"),
    )
    mock_state_file: str | None = setting(
        None, "pin_factory: mock — write pin states to this JSON file", a_path
    )
    mock_input_file: str | None = setting(
        None,
        'pin_factory: mock — drive input pins from this JSON file ({"GPIO5": 0})',
        a_path,
    )


@dataclass(frozen=True)
class I2cConfig:
    bus: int = setting(1, "the I2C adapter: /dev/i2c-<bus> (1 on a Raspberry Pi)", in_range(0, 255))
    fake_file: str | None = setting(
        None,
        "drive a register-level fake bus from this JSON file instead of /dev/i2c-<bus> "
        '(for tests and demos: {"0x41": {"device": "ina219", "bus_voltage": 12.1}})',
        a_path,
    )
    fake_state_file: str | None = setting(
        None,
        "the fake bus writes what its PCA9685s output here, per channel: the ON/OFF "
        "counts and the pulse width (as gpio.mock_state_file does for pins)",
        a_path,
    )


@dataclass(frozen=True)
class EstopConfig:
    """A hardwired E-stop: a normally-closed button (or a chain of them)
    between the pin and GND, with the pull-up on.  The pin reading high, the
    button pressed or the wire cut, latches the E-stop."""

    pin: int = setting(help="BCM number of the input the circuit holds low", check=bcm_pin)


@dataclass(frozen=True)
class MqttConfig:
    host: str = setting("localhost", "the broker's host name or address", host_problem)
    port: int = setting(1883, "the broker's port (8883 with tls)", port_problem)
    username: str | None = setting(None, "broker user name", credential_problem)
    password: str | None = setting(
        None, "broker password (better: password_file)", credential_problem
    )
    password_file: str | None = setting(None, "a file holding the broker password", a_path)
    robot_id: str = setting(
        "",
        "this robot in topics (default: the top-level robot_id, else the host name)",
        ha_id_problem,
        yaml_default=WORKED_OUT,
    )
    topic_prefix: str = setting(
        "anse", "topics are <topic_prefix>/<robot_id>/...", topic_part_problem
    )
    discovery_prefix: str | None = setting(
        "homeassistant",
        "Home Assistant discovery prefix; null turns discovery off",
        topic_part_problem,
        null_is_off=True,
    )
    queue: int = setting(
        1000,
        "events waiting for the broker before telemetry is dropped "
        "(1 to 100000: a few hundred bytes each while the broker is away)",
        in_range(1, 100_000),
    )
    tls: bool = setting(False, "connect with TLS (system CA certificates)")


@dataclass(frozen=True)
class RecordingConfig:
    dir: str = setting(help="where the MCAP files go", check=a_path)
    max_mb: float = setting(
        100.0,
        "start a new file beyond this size (0.01 to 10000 MB: a bigger file is "
        "hard to copy off an SD card or open in a viewer)",
        in_range(0.01, 10_000, " MB"),
    )
    keep: int = setting(10, "how many files to keep, the oldest go (1 to 1000)", in_range(1, 1000))


@dataclass(frozen=True)
class FoxgloveConfig:
    host: str = setting(
        "127.0.0.1",
        "address Foxglove connects to (127.0.0.1: this machine only; the live "
        "view has no token, so every interface only on a network you trust)",
        listen_host_problem,
    )
    port: int = setting(
        8765,
        "TCP port of the live view (8765, Foxglove's own; 0: any free port)",
        listen_port_problem,
    )


@dataclass(frozen=True, kw_only=True)
class SensorConfig:
    """A sensor item.  Its driver's own keys are in `options`; the driver
    declares them (anse_hw.readings.SensorDriver.OPTIONS)."""

    name: str = setting(help="unique name, shown on the stream", check=name_problem)
    type: str = setting("distance", " | ".join(SENSOR_KINDS), one_of(*SENSOR_KINDS))
    #: The help lists the registered drivers; anse_hw.config fills it in.
    driver: str = setting(help="the driver that reads it")
    interval: float = setting(
        help="seconds between readings (default: the driver's)",
        check=seconds(*INTERVAL_RANGE),
        yaml_default=WORKED_OUT,
    )
    max_age: float = setting(
        help=f"seconds without a valid reading before the sensor is stale "
        f"(default: 3 intervals, at least {DEFAULT_MAX_AGE:g})",
        check=seconds(*MAX_AGE_RANGE),
        yaml_default=WORKED_OUT,
    )
    options: dict[str, Any] = field(default_factory=dict)
    #: Applied in order to every valid reading (YAML `filters:`).
    filters: FilterChain = field(default_factory=FilterChain)

    @property
    def kind(self) -> SensorKind:
        return SENSOR_KINDS[self.type]


#: An operator's manual command away from the safe state: held by heartbeats
#: (hold-to-run), or left on until switched off (outputs no guard drives).
HOLD = "hold"
LATCH = "latch"


@dataclass(frozen=True, kw_only=True)
class ActuatorConfig:
    """An actuator item; its driver's own keys are in `options`."""

    name: str = setting(help="unique name, shown on the stream", check=name_problem)
    type: str = setting("motor", " | ".join(ACTUATOR_KINDS), one_of(*ACTUATOR_KINDS))
    driver: str = setting(help="the driver that drives it")
    #: The state it is driven to when in doubt (YAML `safe`, checked against its kind).
    safe_state: str = setting(
        STOPPED,
        "output: off | on — its state when in doubt (default off); "
        "servo: the angle it goes to when in doubt (required)",
        key="safe",
        yaml_default=WORKED_OUT,
        yaml_kind=(str, int, float),
    )
    min_on: float = setting(
        0.0,
        "output: seconds it stays on before a reflex may turn it off (0 to 3600; never "
        "delays its safe state, so with safe: off it cannot hold it on)",
        seconds(0, 3600),
    )
    min_off: float = setting(
        0.0,
        "output: seconds it stays off before a reflex may turn it on (0 to 3600; never "
        "delays its safe state, so with safe: on it cannot hold it off)",
        seconds(0, 3600),
    )
    manual: str = setting(
        HOLD,
        "output: hold | latch — a manual on lasts while the dashboard holds its button "
        "(hold), or until switched off, E-stop or reset (latch; refused where a guard "
        "drives the output)",
        one_of(HOLD, LATCH),
    )
    max_speed: float = setting(
        1.0,
        "drive: the duty of each wheel at full speed (0.05 to 1; default 1), the cap on "
        "every command",
        in_range(0.05, 1),
        yaml_default=WORKED_OUT,
    )
    accel: float = setting(
        2.0,
        "drive: duty per second a wheel may gain (0.1 to 100; default 2: standstill to "
        "full in half a second); slowing down and stopping are never ramped",
        in_range(0.1, 100),
        yaml_default=WORKED_OUT,
    )
    encoders: dict[str, Any] | None = setting(
        None,
        "drive: wheel encoders, for measured and closed-loop wheel speed and stall "
        "detection: {left: {a, b, counts_per_rev}, right: {a, b, counts_per_rev}} "
        "(quadrature on GPIO) or {port, baud, counts_per_rev} (a microcontroller printing "
        f"E,<left>,<right>); optional max_rps, each wheel's rev/s at full duty (default "
        f"{DEFAULT_MAX_RPS:g})",
        encoders_problem,
    )
    stall: dict[str, Any] | None = setting(
        None,
        "drive with encoders: {after: S}, a wheel commanded but not turning for S seconds "
        f"(0.1 to 10; default {DEFAULT_STALL_AFTER:g}) is a fault: the base stops until a reset",
        stall_problem,
        yaml_default=WORKED_OUT,
    )
    options: dict[str, Any] = field(default_factory=dict)

    def rest(self, state: str) -> float:
        """How long it must stay in `state` before a reflex may change it."""
        return {ON: self.min_on, OFF: self.min_off}.get(state, 0.0)


@dataclass(frozen=True, kw_only=True)
class ReflexConfig:
    """A reflex: a condition on filtered readings, one command to one or more
    actuators.  The one-line form (`sensor` + `below`/`above`/`active`) and
    the `when:` form build the same `when` tree, so the engine knows one kind."""

    name: str = setting(help="shown on the stream as reflex_name", check=name_problem)
    sensor: str | None = setting(None, "the one-line form: name of a configured sensor")
    actuator: str | None = setting(None, "name of a configured actuator (or actuators: [a, b])")
    command: str = setting(
        help="motor: stop | move | reverse, or {move: {speed: 0..1}} | {reverse: {speed: 0..1}}; "
        "output: on | off; drive: stop | {linear, angular} | {limit: {full_at, zero_at}}; "
        "servo: an angle or {angle: A}; any actuator: estop (stop it and latch the E-stop "
        "until an operator resets it)",
        yaml_kind=(str, int, float, dict),
    )
    below: float | None = setting(None, "numeric sensors: fires when the reading is below this")
    above: float | None = setting(None, "numeric sensors: fires when the reading is above this")
    max_delay: float = setting(
        MAX_DELAY,
        "guards: the most their filters and for: may delay a stop, in seconds "
        "(--check refuses a guard over it)",
        seconds(0.001, 60),
    )
    #: The condition, from `when:` or the one-line form, with its `for:`.
    when: Condition
    #: Every actuator the command drives (`actuator`, or `actuators:`).
    actuators: tuple[str, ...] = ()
    #: Human text for the wire, as the seed writes it: "distance < 10cm".
    condition: str = ""
    #: The state the command drives the actuators to.
    target: str = STOPPED
    #: It drives its actuators to their safe state: its sensors guard them
    #: (silence or a fault puts them in their safe state; S1, S2, S5, S6).
    guard: bool = True
    #: `command: estop`: firing latches the E-stop (every actuator safe until a reset).
    latch: bool = False
    #: A drive's cruise: the `{linear, angular}` its command moves it at.
    twist: tuple[float, float] | None = None
    #: A motor's move: (reverse, speed), speed None for its configured one.
    how: tuple[bool, float | None] | None = None

    @property
    def sensors(self) -> frozenset[str]:
        """Every sensor its condition names."""
        return self.when.sensors()

    @property
    def region(self) -> tuple[float, float] | None:
        """The open interval of one sensor's values for which a plain
        one-leaf reflex fires (None for a compound one or one with for:)."""
        leaf = self.when.root
        if self.when.hold or not isinstance(leaf, Leaf) or leaf.test not in ("below", "above"):
            return None
        return (-math.inf, leaf.value) if leaf.test == "below" else (leaf.value, math.inf)


@dataclass(frozen=True, kw_only=True)
class LimitConfig:
    """A reflex whose command is `{limit: {full_at, zero_at}}`: it caps a
    drive's forward speed by one sensor's reading, all the time (it has no
    condition that fires), so it is kept apart from the reflexes that fire."""

    name: str
    sensor: str
    actuators: tuple[str, ...]
    full_at: float
    zero_at: float


@dataclass(frozen=True, kw_only=True)
class Config:
    source: str
    robot_id: str | None = setting(
        None,
        "this robot's identity: its state (latch, token, safe-stop record) is kept under "
        "it, and MQTT topics use it (1-64 of A-Z a-z 0-9 _ -; not sim or sim-...)",
        robot_id_problem,
    )
    server: ServerConfig = setting(ServerConfig(), "the dashboard and the event stream")
    gpio: GpioConfig = setting(GpioConfig(), "the GPIO backend (gpiozero's pin factory)")
    i2c: I2cConfig = setting(I2cConfig(), "the I2C bus of the ina219, bme280 and vl53l1x sensors")
    sensors: tuple[SensorConfig, ...] = setting(help="a list of at least one sensor")
    actuators: tuple[ActuatorConfig, ...] = setting((), "a list of actuators")
    reflexes: tuple[ReflexConfig, ...] = setting((), "a list of reflexes")
    #: The reflexes whose command is a `limit` (listed under `reflexes:`).
    limits: tuple[LimitConfig, ...] = ()
    state_dir: str | None = setting(
        None,
        "where the daemon keeps what outlives a run (default: $STATE_DIRECTORY, "
        "/var/lib/anse-hw for root, else ~/.local/state/anse-hw)",
        a_path,
    )
    estop: EstopConfig | None = setting(
        None, "a hardwired E-stop input (absent: only the dashboard's and MQTT's E-stop)"
    )
    mqtt: MqttConfig | None = setting(None, "publish to an MQTT broker (absent: off)")
    recording: RecordingConfig | None = setting(
        None, "record every reading and event to MCAP files (absent: off)"
    )
    foxglove: FoxgloveConfig | None = setting(
        None, "serve the recording's channels live to Foxglove (absent: off)"
    )
    #: The YAML it was read from (kept in recordings, so replay can rebuild it).
    text: str = ""
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
        """The guards: sensors whose silence puts an actuator in its safe state
        (S2): every sensor a guard names anywhere in its condition."""
        return {s for r in self.reflexes if r.guard for s in r.sensors}


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
