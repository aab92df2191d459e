"""The resolved setup as `--check` prints it (and recordings keep it):
every default filled in, every guard named, so a user sees what the daemon
will do before it drives anything."""

from __future__ import annotations

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
    out.append("actuators:")
    for act in config.actuators:
        out.append(
            f"  {act.name}: {act.type} via {act.driver}, safe {act.safe_state} "
            f"({_options(act.options)})"
        )
    out.append("reflexes:")
    for r in config.reflexes:
        role = "guard" if r.guard else "resume"
        out.append(f"  {r.name}: {r.sensor} {r.condition} -> {r.command} {r.actuator} ({role})")
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
