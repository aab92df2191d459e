"""A motor's `reverse` and `speed` on its commands, and its `stop_mode`, on
gpiozero's MockFactory behind a real engine fed reading by reading."""

from __future__ import annotations

import pytest

from anse_hw import config as configuration
from anse_hw.app.devices import build_actuators, build_sensors
from anse_hw.drivers.mockpins import MockFactory, MockPWMPin
from anse_hw.engine import Engine
from anse_hw.errors import ConfigError, Refused
from anse_hw.readings import Sample

MOTOR = """
sensors:
  - {name: front, driver: sim, interval: 10, max_age: 30}
actuators:
  - {name: winch, driver: gpio, forward: 17, backward: 18, enable: 12, speed: 0.6%s}
reflexes:
  - {name: guard, sensor: front, below: 10, actuator: winch, command: stop}
  - {name: pay_out, sensor: front, above: 50, actuator: winch, command: {reverse: {speed: 0.3}}}
  - {name: haul_in, when: {all: [{sensor: front, above: 15}, {sensor: front, below: 50}]},
     actuator: winch, command: move}
"""


def motor_engine(extra: str = "") -> tuple[Engine, MockFactory]:
    cfg = configuration.parse(MOTOR % extra)
    factory = MockFactory(pin_class=MockPWMPin)
    engine = Engine(
        cfg, build_sensors(cfg, None), build_actuators(cfg, factory), lambda b: None, print
    )
    engine.prepare()
    return engine, factory


def levels(factory: MockFactory) -> tuple[float, float, float]:
    """(forward, backward, enable)."""
    return tuple(float(factory.pin(n).state) for n in (17, 18, 12))


def test_a_reflex_reverses_a_motor_at_its_own_speed_and_move_goes_forward_again():
    engine, factory = motor_engine()
    engine.on_sample("front", Sample(80.0))
    assert levels(factory) == pytest.approx((0.0, 0.3, 1.0))
    engine.on_sample("front", Sample(30.0))
    assert levels(factory) == pytest.approx((0.6, 0.0, 1.0)), "move: the configured speed"
    engine.on_sample("front", Sample(5.0))
    assert levels(factory) == (0.0, 0.0, 1.0), "unset stop_mode: gpiozero's stop"


def test_an_operator_may_reverse_a_motor_and_give_a_speed():
    engine, factory = motor_engine()
    engine.on_sample("front", Sample(30.0))  # clear: haul_in moves it at 0.6
    engine.operator("command", "test", "winch", {"move": {"speed": 0.5}})
    assert levels(factory) == pytest.approx((0.5, 0.0, 1.0))
    engine.on_sample("front", Sample(31.0))
    assert levels(factory) == pytest.approx((0.5, 0.0, 1.0)), "the operator's hold keeps it"
    engine.operator("command", "test", "winch", "reverse")
    assert levels(factory) == pytest.approx((0.0, 0.6, 1.0))
    with pytest.raises(Refused) as refused:
        engine.operator("command", "test", "winch", {"move": {"speed": 2}})
    assert refused.value.status == 400 and "speed must be from 0 to 1" in str(refused.value)
    engine.operator("command", "test", "winch", "stop")
    assert levels(factory) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("stop_mode", "stopped"), [("brake", (1.0, 1.0, 1.0)), ("coast", (0.0, 0.0, 0.0))]
)
def test_stop_mode_is_what_a_stop_leaves_on_the_bridge_and_moving_again_works(stop_mode, stopped):
    engine, factory = motor_engine(f", stop_mode: {stop_mode}")
    assert levels(factory) == stopped, "from the start"
    engine.on_sample("front", Sample(30.0))
    assert levels(factory) == pytest.approx((0.6, 0.0, 1.0))
    engine.on_sample("front", Sample(5.0))
    assert levels(factory) == stopped
    assert engine.world.actuators["winch"] == "STOPPED"


@pytest.mark.parametrize(
    ("actuator", "reflex", "message"),
    [
        (
            "{name: m, driver: gpio, phase: 17, enable: 12, stop_mode: brake}",
            "{name: r, sensor: front, below: 5, actuator: m, command: stop}",
            "stop_mode: is for forward + backward wiring",
        ),
        (
            "{name: m, driver: sim}",
            "{name: r, sensor: front, above: 5, actuator: m, command: {move: {speed: -1}}}",
            "speed must be from 0 to 1",
        ),
        (
            "{name: m, type: output, driver: sim}",
            "{name: r, sensor: front, above: 5, actuator: m, command: {on: {speed: 1}}}",
            "is for a motor, a drive or a servo",
        ),
    ],
)
def test_a_motor_command_or_stop_mode_that_cannot_be_obeyed_is_a_config_error(
    actuator, reflex, message
):
    text = (
        f"sensors: [{{name: front, driver: sim}}]\nactuators: [{actuator}]\nreflexes: [{reflex}]\n"
    )
    with pytest.raises(ConfigError) as error:
        configuration.parse(text)
    assert message in str(error.value)


def test_a_dashboard_command_with_a_speed_or_a_twist_is_checked_at_the_door():
    import json

    from anse_hw.web.api import parse_ws_command

    def parsed(command: object):
        message = {"action": "command", "actuator": "winch", "command": command}
        return parse_ws_command(json.dumps(message))

    assert parsed({"reverse": {"speed": 0.3}}).command == {"reverse": {"speed": 0.3}}
    assert parsed({"linear": 0.5, "angular": -1}).command == {"linear": 0.5, "angular": -1}
    for bad, says in (
        ({"move": {"speed": 2}}, "command speed must be from 0 to 1, got 2"),
        ({"linear": 0.5}, "command must be {linear: -1..1, angular: -1..1}"),
        ({"spin": 1}, "command must be move | reverse"),
    ):
        with pytest.raises(Refused) as refused:
            parsed(bad)
        assert (refused.value.status, str(refused.value).startswith(says)) == (400, True)
