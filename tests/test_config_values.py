"""Config values are checked at --check, so that nothing fails later, silently
or with a traceback: every number against a range with an upper bound, every
host, path and credential for what it names, every section for its shape.
Each refusal is one line with file:line, the key and the reason, exit 2."""

from __future__ import annotations

import math
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anse_hw import config, options
from anse_hw.app import cli
from tests.conftest import run_cli, write_config

SIM = "sensors:\n  - {name: a, driver: sim}\n"
ERROR = re.compile(r"^\S+ ERROR (config )?error: (?P<text>.*)$")


def check(tmp_path, capsys, text: str, *args: str) -> tuple[int, list[str]]:
    """`anse-hw --config FILE --check` in this process: exit code, stderr lines."""
    path = tmp_path / "robot.yaml"
    path.write_text(text)
    code = cli.main(["--config", str(path), "--check", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err.strip().splitlines()


def refused(tmp_path, capsys, text: str, line: int, key: str, reason: str) -> None:
    code, lines = check(tmp_path, capsys, text)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert f"robot.yaml:{line}: {key}: " in lines[0], lines
    assert reason in lines[0], lines


# -- numbers ---------------------------------------------------------------------


def place(section: str, key: str, value: str, tmp: str = "/tmp") -> tuple[str, int]:
    """A valid config with `key: value` at `section`, and the line it is on."""
    gpio = "gpio: {pin_factory: mock}\n"
    texts = {
        "server": f"server: {{{key}: {value}}}\n" + SIM,
        "mqtt": f"mqtt: {{{key}: {value}}}\n" + SIM,
        "recording": f"recording: {{dir: {tmp}, {key}: {value}}}\n" + SIM,
        "sim": f"sensors:\n  - {{name: a, driver: sim, {key}: {value}}}\n",
        "serial": (
            "sensors:\n  - {name: a, driver: serial, port: /dev/null, protocol: line,"
            f" {key}: {value}}}\n"
        ),
        "hcsr04": gpio
        + f"sensors:\n  - {{name: a, driver: hcsr04, trigger: 23, echo: 24, {key}: {value}}}\n",
        "gpio-input": gpio
        + f"sensors:\n  - {{name: a, type: binary, driver: gpio, pin: 5, {key}: {value}}}\n",
        "motor": gpio
        + SIM
        + f"actuators:\n  - {{name: m, driver: gpio, forward: 17, backward: 18, {key}: {value}}}\n",
    }
    text = texts[section]
    return text, next(i for i, ln in enumerate(text.splitlines(), 1) if f"{key}: " in ln)


#: (where, key, low, high, integer): every bounded number a config can hold.
BOUNDS = [
    ("server", "max_clients", 1, 10_000, True),
    ("server", "max_message_bytes", 512, 1024 * 1024, True),
    ("server", "ping_interval", 1, 600, False),
    ("server", "client_buffer", 1, 100_000, True),
    ("server", "heartbeat", 0.1, 10, False),
    ("server", "port", 0, 65535, True),
    ("mqtt", "port", 1, 65535, True),
    ("mqtt", "queue", 1, 100_000, True),
    ("recording", "max_mb", 0.01, 10_000, False),
    ("recording", "keep", 1, 1000, True),
    ("sim", "interval", 0.005, 60, False),
    ("sim", "noise", 0, 1000, False),
    ("sim", "dropout", 0, 1, False),
    ("serial", "reconnect_max", 0.05, 60, False),
    ("serial", "baudrate", 50, 4_000_000, True),
    ("hcsr04", "max_distance", 0.05, 6, False),
    ("hcsr04", "median_of", 1, 15, True),
    ("gpio-input", "bounce_time", 0.001, 1, False),
    ("motor", "speed", 0, 1, False),
]
IDS = [f"{where}.{key}" for where, key, *_ in BOUNDS]


def path_of(where: str, key: str) -> str:
    prefix = {
        "server": "server",
        "mqtt": "mqtt",
        "recording": "recording",
        "motor": "actuators[0]",
    }.get(where, "sensors[0]")
    return f"{prefix}.{key}"


def beyond(low: float, high: float, integer: bool) -> list[str]:
    """Values just outside the range, and absurdly far outside it."""
    if integer:
        return [str(low - 1), str(high + 1), "999999999999"]
    return [repr(math.nextafter(high, math.inf)), "1e308", repr(low - 0.001), "-1e308"]


@pytest.mark.parametrize(("where", "key", "low", "high", "integer"), BOUNDS, ids=IDS)
def test_each_number_is_refused_beyond_either_bound(
    tmp_path, capsys, where, key, low, high, integer
):
    for value in beyond(low, high, integer):
        text, line = place(where, key, value, str(tmp_path))
        refused(tmp_path, capsys, text, line, path_of(where, key), "must be")


@pytest.mark.parametrize(("where", "key", "low", "high", "integer"), BOUNDS, ids=IDS)
def test_each_number_is_accepted_at_both_bounds(tmp_path, capsys, where, key, low, high, integer):
    for value in (low, high):
        text, _ = place(where, key, str(value), str(tmp_path))
        code, lines = check(tmp_path, capsys, text)
        assert code == 0, (value, lines)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(BOUNDS),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**11), 10**11),
)
def test_a_number_is_accepted_exactly_when_it_is_in_range(bound, number):
    """In-process parse (no devices opened): in range ⇔ no problem with this key."""
    where, key, low, high, integer = bound
    if integer and isinstance(number, float):
        number = int(number) if abs(number) < 1e11 else 10**11
    text, _ = place(where, key, repr(number))
    try:
        config.parse(text, "robot.yaml")
        problems = []
    except config.ConfigError as exc:
        problems = [p for p in exc.problems if f"{path_of(where, key)}:" in p]
    assert (low <= number <= high) == (not problems), (number, problems)


# -- hosts -----------------------------------------------------------------------

LABEL = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=63).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
HOSTNAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join).filter(lambda s: len(s) <= 253)
ADDRESSES = st.ip_addresses().map(str)


@settings(max_examples=200, deadline=None)
@given(HOSTNAMES | ADDRESSES)
def test_host_names_and_addresses_are_accepted(host):
    assert options.host_problem(host) is None
    assert options.listen_host_problem(host) is None


BAD_HOSTS = st.one_of(
    st.just(""),
    st.builds(lambda a, b: f"{a}..{b}", LABEL, LABEL),
    st.builds(lambda a: a + ".-x", LABEL),
    st.text(min_size=64, max_size=64, alphabet="a"),
    st.text(alphabet="a.", min_size=254, max_size=400).filter(lambda s: ".." not in s),
    st.builds(
        lambda a, bad, b: a + bad + b,
        LABEL,
        st.sampled_from(["\0", " ", "/", ":", "@", "é", "\n", "%"]),
        LABEL,
    ),
)


@settings(max_examples=200, deadline=None)
@given(BAD_HOSTS)
def test_anything_else_is_not_a_host(host):
    assert options.host_problem(host)


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        ("mqtt: {host: ''}\n" + SIM, 1, "mqtt.host", "is empty"),
        ("mqtt: {host: a..b}\n" + SIM, 1, "mqtt.host", "must be an IP address or a host name"),
        ("mqtt: {host: " + "a" * 300 + "}\n" + SIM, 1, "mqtt.host", "at most 253"),
        ('server: {host: "a\\0b"}\n' + SIM, 1, "server.host", "must be an IP address"),
        ("server: {host: ''}\n" + SIM, 1, "server.host", "write 0.0.0.0"),
        ("mqtt: {username: ''}\n" + SIM, 1, "mqtt.username", "is empty"),
        ('mqtt: {username: u, password: "a\\0b"}\n' + SIM, 1, "mqtt.password", "without NUL"),
    ],
    ids=["mqtt-empty", "mqtt-a..b", "mqtt-300", "server-nul", "server-empty", "user", "password"],
)
def test_hosts_and_credentials_at_check(tmp_path, capsys, text, line, key, reason):
    refused(tmp_path, capsys, text, line, key, reason)


def test_host_on_the_command_line_follows_the_same_rule(tmp_path, capsys):
    (tmp_path / "robot.yaml").write_text(SIM)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--config", str(tmp_path / "robot.yaml"), "--check", "--host", "a..b"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--host: 'a..b' must be an IP address or a host name" in err
    assert "Traceback" not in err


# -- paths -----------------------------------------------------------------------

#: Every key that names a file or directory: (the config with @ for the
#: value, the key path, the line).
PATH_KEYS = [
    ("state_dir: @\n" + SIM, "state_dir", 1),
    ("recording: {dir: @}\n" + SIM, "recording.dir", 1),
    ("server: {control_token_file: @}\n" + SIM, "server.control_token_file", 1),
    ("mqtt: {username: u, password_file: @}\n" + SIM, "mqtt.password_file", 1),
    ("gpio: {pin_factory: mock, mock_state_file: @}\n" + SIM, "gpio.mock_state_file", 1),
    ("gpio: {pin_factory: mock, mock_input_file: @}\n" + SIM, "gpio.mock_input_file", 1),
    ("sensors:\n  - {name: a, driver: sim, profile: trace, trace: @}\n", "sensors[0].trace", 2),
    (
        "sensors:\n  - {name: a, type: temperature, driver: ds18b20, w1_root: @}\n",
        "sensors[0].w1_root",
        2,
    ),
    ("sensors:\n  - {name: a, type: temperature, driver: cpu, path: @}\n", "sensors[0].path", 2),
    ("sensors:\n  - {name: a, driver: serial, protocol: tfmini, port: @}\n", "sensors[0].port", 2),
]
PATH_IDS = [key for _, key, _ in PATH_KEYS]


@pytest.mark.parametrize(("template", "key", "line"), PATH_KEYS, ids=PATH_IDS)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("''", "is empty; give a path"),
        ('"/tmp/a\\0b"', "contains a NUL byte"),
        ("/" + "a/" * 2100, "is longer than 4095 bytes"),
    ],
    ids=["empty", "nul", "long"],
)
def test_every_path_key_refuses_what_no_file_can_be_called(
    tmp_path, capsys, template, key, line, value, reason
):
    refused(tmp_path, capsys, template.replace("@", value), line, key, reason)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(PATH_KEYS), st.text(max_size=20), st.text(max_size=20))
def test_a_nul_anywhere_in_any_path_is_one_line(tmp_path, capsys, entry, before, after):
    template, key, _ = entry
    escaped = (before + "\0" + after).encode("unicode_escape").decode().replace('"', '\\"')
    code, lines = check(tmp_path, capsys, template.replace("@", f'"{escaped}"'))
    assert code == 2
    assert any(f"{key}: " in x and "NUL" in x for x in lines), lines


def test_a_1wire_device_is_an_id_not_a_path(tmp_path, capsys):
    text = "sensors:\n  - {name: a, type: temperature, driver: ds18b20, device: ../../etc}\n"
    refused(tmp_path, capsys, text, 2, "sensors[0].device", "must be a 1-wire id")


# -- sections --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("mqtt: []\n" + SIM, "mqtt", "expected a mapping of keys, got list"),
        ("mqtt: ''\n" + SIM, "mqtt", "expected a mapping of keys, got str"),
        ("mqtt: 0\n" + SIM, "mqtt", "expected a mapping of keys, got int"),
        ("server: []\n" + SIM, "server", "expected a mapping of keys, got list"),
        ("gpio: false\n" + SIM, "gpio", "expected a mapping of keys, got bool"),
        ("recording: []\n" + SIM, "recording", "expected a mapping of keys, got list"),
        ("recording: {dir: ''}\n" + SIM, "recording.dir", "is empty; give a path"),
    ],
    ids=["mqtt-list", "mqtt-str", "mqtt-0", "server-list", "gpio-false", "rec-list", "rec-dir"],
)
def test_a_section_that_is_not_a_mapping_is_an_error_not_the_defaults(
    tmp_path, capsys, text, key, reason
):
    """`mqtt: []` used to turn MQTT on at localhost; `recording: {dir: ''}`
    used to turn recording off."""
    refused(tmp_path, capsys, text, 1, key, reason)


def test_an_empty_mapping_still_means_the_defaults():
    assert config.parse("mqtt: {}\n" + SIM).mqtt.host == "localhost"
    assert config.parse("server:\n" + SIM).server.port == 8001


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('mqtt: {username: "u\\ud800"}\n' + SIM, 1),
        ('mqtt: {topic_prefix: "a\\udfff"}\n' + SIM, 1),
        ('state_dir: "/tmp/\\ud800"\n' + SIM, 1),
        ('sensors:\n  - {name: a, driver: sim}\n  - {name: "b\\ud800", driver: sim}\n', 3),
        (
            "sensors:\n  - {name: a, driver: serial, port: /dev/null, protocol: line,\n"
            '     pattern: "(?P<value>[0-9]+)\\ud800"}\n',
            3,
        ),
    ],
    ids=["username", "topic-prefix", "path", "name", "pattern"],
)
def test_a_lone_surrogate_anywhere_is_refused_by_the_loader(tmp_path, text, line):
    """YAML's "\\ud800" is half a character: --check printed the setup with a
    traceback (stdout cannot encode it), and a broker could not take it."""
    result = run_cli("--config", str(write_config(tmp_path, text)), "--check")
    assert result.returncode == 2, result.stdout
    assert f"robot.yaml:{line}: \\ud" in result.stderr
    assert "is half of a UTF-16 pair, not a character" in result.stderr
    assert "Traceback" not in result.stderr
