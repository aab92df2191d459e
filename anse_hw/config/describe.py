"""The resolved setup as `--check` prints it (and recordings keep it):
every default filled in, every guard named, so a user sees what the daemon
will do before it drives anything."""

from __future__ import annotations

from anse_hw.config.rules import budget
from anse_hw.kinds import ACTUATOR_KINDS
from anse_hw.model import Config, MqttConfig

__all__ = ["describe"]


def describe(config: Config) -> str:
    """The resolved setup, one line per item."""
    s = config.server
    out = [
        f"config: {config.source}",
        f"server: ws://{s.host}:{s.port}  (max {s.max_clients} clients, "
        f"dashboard {'on' if s.dashboard else 'off'})",
        f"gpio: pin_factory {config.gpio.pin_factory or 'gpiozero default'}",
        "sensors:",
    ]
    for sensor in config.sensors:
        out.append(
            f"  {sensor.name}: {sensor.type} via {sensor.driver} every {sensor.interval:g}s,"
            f" stale after {sensor.max_age:g}s ({_options(sensor.options)})"
        )
    out.append(
        f"estop: hardwired on GPIO{config.estop.pin} (normally closed to GND; open latches)"
        if config.estop
        else "estop: no hardwired E-stop configured (estop: {pin: N}; --sim never opens "
        "one); only the dashboard's and MQTT's"
    )
    out.append("actuators:")
    for act in config.actuators:
        rests = "".join(
            f", {key} {value:g}s"
            for key, value in (("min_on", act.min_on), ("min_off", act.min_off))
            if value
        )
        if ACTUATOR_KINDS[act.type].steered:
            rests += f", max_speed {act.max_speed:g}, accel {act.accel:g}/s"
        out.append(
            f"  {act.name}: {act.type} via {act.driver}, safe {act.safe_state}{rests} "
            f"({_options(act.options)})"
        )
    out.append("reflexes:")
    for r in config.reflexes:
        role = "guard" if r.guard else "resume"
        # The one-line form's text names the kind ("distance < 10cm"): say which sensor.
        said = r.condition if r.sensor is None else f"{r.sensor} {r.condition}"
        out.append(f"  {r.name}: {said} -> {r.command} {', '.join(r.actuators)} ({role})")
    for limit in config.limits:
        out.append(
            f"  {limit.name}: {limit.sensor} caps forward of {', '.join(limit.actuators)}: "
            f"full from {limit.full_at:g}, none at {limit.zero_at:g} and nearer (limit)"
        )
    out.append("stop-delay budget (what filters and for: add to a guard's stop):")
    for r in config.reflexes:
        if r.guard:
            spent = budget(r, list(config.sensors))
            out.append(f"  {r.name}: {spent.breakdown}; max_delay {r.max_delay * 1000:g} ms")
    if config.mqtt:
        out.append(_mqtt(config.mqtt))
    watched = sorted(config.watched_sensors())
    out.append(
        f"guards (silence puts an actuator in its safe state): {', '.join(watched) or 'none'}"
    )
    return "\n".join(out)


def _options(options: dict) -> str:
    """key=value, an I2C address in hex as i2cdetect and the datasheets write it."""
    return ", ".join(
        f"{k}=0x{v:02x}" if k == "address" else f"{k}={v}"
        for k, v in options.items()
        if v is not None
    )


def _mqtt(m: MqttConfig) -> str:
    discovery = f"discovery under {m.discovery_prefix}/" if m.discovery_prefix else "no discovery"
    user = f" as user {m.username}" if m.username else ""
    return f"mqtt: {m.host}:{m.port}{user}, topics {m.topic_prefix}/{m.robot_id}/..., {discovery}"
