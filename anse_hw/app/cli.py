"""The `anse-hw` command line (README.md, "Command line"): one parser for the
daemon and its subcommands.

Without a subcommand it runs (or checks, or safe-stops) the daemon; each
subcommand names its handler with `set_defaults(handler=...)`, so the list of
verbs is the subparsers themselves.  Exit codes are errors.OK, FAILURE and
USAGE.  Errors a user can fix are one clear line each, never a traceback.

Imports are lazy: `anse-hw example` and `install-service --help` load
neither the web stack, nor the drivers, nor the YAML loader, and
`--safe-stop` does not wait for the web stack.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anse_hw import __version__
from anse_hw.app.logsetup import setup_logging
from anse_hw.errors import FAILURE, OK, USAGE, ConfigError, DriverError, Failure
from anse_hw.options import a_path, listen_host_problem, listen_port_problem, port_problem

if TYPE_CHECKING:
    from anse_hw.model import Config

log = logging.getLogger("anse_hw")


def _port_argument(rule: Callable[[int], str | None]) -> Callable[[str], int]:
    """A port checked by the same `rule` as the YAML key it stands for."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        problem = rule(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


#: --port of the daemon and replay, by the rule server.port has in the YAML;
#: --port of `health`, which connects, by mqtt.port's.
listen_port = _port_argument(listen_port_problem)
port_number = _port_argument(port_problem)


def listen_host(text: str) -> str:
    """--host, by the rule server.host has in the YAML."""
    problem = listen_host_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} {problem}")
    return text


def root_path(text: str) -> str:
    """--root of install-service: '' would stage into the current directory."""
    problem = a_path(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} {problem}")
    return text


def parser() -> argparse.ArgumentParser:
    """The daemon's flags on the top level, each verb a subparser."""
    p = argparse.ArgumentParser(
        prog="anse-hw",
        description="Reflex daemon: distance sensors → world model → reflexes → motor, "
        "streamed as JSON events over WebSocket with a live dashboard on the same port.",
        epilog="Examples:\n  anse-hw --sim                         simulated robot, no hardware\n"
        "  anse-hw --config robot.yaml --check   validate and show the setup\n"
        "  anse-hw --config robot.yaml           run on the Pi\n"
        "  anse-hw COMMAND --help                a subcommand's own options\n"
        "Config lookup: --config, then $ANSE_HW_CONFIG, then /etc/anse-hw/config.yaml.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _daemon_options(p)
    p.add_argument("--version", action="version", version=f"anse-hw {__version__}")
    sub = p.add_subparsers(dest="verb", title="subcommands", metavar="COMMAND")
    for add in (_replay, _recordings, _example, _install, _uninstall, _health):
        add(sub)
    return p


def _daemon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sim",
        action="store_true",
        help="use simulated drivers (alone: the built-in demo; with --config: "
        "every driver in the file swapped for its fake)",
    )
    p.add_argument("--config", metavar="FILE", help="YAML configuration file")
    p.add_argument("--host", type=listen_host, help="listen address (overrides server.host)")
    p.add_argument(
        "--port", type=listen_port, help="listen port (overrides server.port; 0: any free port)"
    )
    p.add_argument("--debug", action="store_true", help="log every event with timings")
    p.add_argument(
        "--check",
        action="store_true",
        help="validate the config, print the resolved setup, exit 0 or 2",
    )
    p.add_argument(
        "--safe-stop",
        action="store_true",
        help="drive every actuator to its safe state and exit (systemd ExecStopPost); "
        "uses what is still valid in the config and the record of the last run, so "
        "it works with a broken or deleted config too",
    )
    p.add_argument(
        "--record", metavar="DIR", help="record readings and events as MCAP files in DIR"
    )


def _replay(sub: Any) -> None:
    replay = sub.add_parser("replay", help="play a recording through the engine on fakes")
    replay.set_defaults(handler=recordings)
    replay.add_argument("file", help="an .mcap file written by --record")
    # Numbers are checked by replay (one line and exit 2), not by argparse.
    replay.add_argument("--speed", help="1 = as recorded (the default), 10 = ten times")
    replay.add_argument("--from", dest="start", metavar="T", help="start T seconds in")
    replay.add_argument("--to", dest="end", metavar="T", help="stop T seconds in")
    replay.add_argument("--config", help="replay with this config instead of the recorded one")
    replay.add_argument(
        "--verify",
        action="store_true",
        help="as fast as possible; exit 0 only if every decision matches, 1 if one differs",
    )
    replay.add_argument("--host", help="the live replay's dashboard address")
    replay.add_argument("--port", type=listen_port, help="the live replay's dashboard port")


def _recordings(sub: Any) -> None:
    listing = sub.add_parser("recordings", help="list the recordings in a directory")
    listing.set_defaults(handler=recordings)
    listing.add_argument("dir")


def _example(sub: Any) -> None:
    from anse_hw.app import example

    printer = sub.add_parser(
        "example",
        help="print an example config (anse-hw example pi-robot > robot.yaml)",
    )
    printer.set_defaults(handler=lambda args: example.show(args.name))
    printer.add_argument("name", nargs="?", help=f"one of: {', '.join(example.names())}")


def _install(sub: Any) -> None:
    install = sub.add_parser(
        "install-service",
        help="install the systemd service (run with sudo; safe to run again)",
        description="Create the anse-hw user (groups gpio, dialout), copy FILE to "
        "/etc/anse-hw/config.yaml, install anse-hw.service running this Python, "
        "enable and start it.  A second run with the same inputs changes nothing.",
    )
    install.set_defaults(handler=service)
    install.add_argument("--config", required=True, metavar="FILE", help="the robot's YAML")
    install.add_argument("--no-start", action="store_true", help="enable, but do not start")
    install.add_argument(
        "--root", default="/", type=root_path, help="stage the files under ROOT (packagers)"
    )


def _uninstall(sub: Any) -> None:
    uninstall = sub.add_parser(
        "uninstall-service",
        help="stop (motors safe), disable and remove the systemd service",
    )
    uninstall.set_defaults(handler=service)
    uninstall.add_argument(
        "--purge",
        action="store_true",
        help="also remove /etc/anse-hw, /var/lib/anse-hw and the anse-hw user",
    )
    uninstall.add_argument(
        "--root", default="/", type=root_path, help="the ROOT a staged install went to"
    )


def _health(sub: Any) -> None:
    health = sub.add_parser(
        "health",
        help="exit 0 if this machine's daemon answers /healthz with 200 (container HEALTHCHECK)",
    )
    health.set_defaults(handler=lambda args: check_health(args.config, args.port))
    health.add_argument("--config", metavar="FILE", help="the daemon's config (for its port)")
    health.add_argument("--port", type=port_number, help="the daemon's port, if not the config's")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    args = p.parse_args(argv)
    if args.verb is None:
        listener = setup_logging(args.debug)
        try:
            return run(args)
        finally:
            listener.stop()
    if argv[0] != args.verb:
        # Its own --config, --host or --port would silently replace the daemon's.
        p.error(
            f"the daemon's options go without a subcommand; "
            f"see `anse-hw {args.verb} --help` for its own"
        )
    return run_verb(args)


def user_errors(work: Callable[[], int], what: str = "config error") -> int:
    """Errors a user can fix become one line each and exit USAGE (config) or
    FAILURE (a device, a port, systemctl), never a traceback."""
    try:
        return work()
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s: %s", what, problem)
        return USAGE
    except (DriverError, Failure) as exc:
        log.error("error: %s", exc)
        return FAILURE
    except KeyboardInterrupt:
        return OK


def run_verb(args: argparse.Namespace) -> int:
    listener = setup_logging(False)
    try:
        return user_errors(lambda: args.handler(args), "error")
    except BrokenPipeError:
        # `anse-hw example pi-robot | head`: the reader left; so do we, quietly
        # (what Python's documentation recommends for SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILURE
    finally:
        listener.stop()


def recordings(args: argparse.Namespace) -> int:
    """`recordings DIR` and `replay FILE`.  A recording that cannot be used, like
    a config, is one line and exit 2."""
    from anse_hw import files
    from anse_hw.app import replay  # mcap: only the verbs that read recordings need it

    try:
        if args.verb == "recordings":
            from anse_hw.app.listing import list_recordings

            return list_recordings(args.dir)
        window = replay.Window.parse(args.start, args.end)
        if args.verify:
            given = {"--speed": args.speed, "--host": args.host, "--port": args.port}
            live_only = ", ".join(option for option, value in given.items() if value is not None)
            if live_only:
                raise ConfigError([f"{live_only}: only for a live replay, not with --verify"])
            return replay.verify(args.file, args.config, window)
        pace = replay.speed(args.speed) if args.speed is not None else 1.0
        return replay.live(args.file, args.config, window, pace, args.host, args.port)
    except files.FileProblem as exc:
        raise ConfigError([str(exc)]) from None


def service(args: argparse.Namespace) -> int:
    """install-service and uninstall-service (grp, pwd, shutil: not for the daemon)."""
    from pathlib import Path

    from anse_hw.app.service import Installer, os_problem

    installer = Installer(Path(args.root))
    try:
        if args.verb == "uninstall-service":
            return installer.uninstall(args.purge)
        return installer.install(args.config, start=not args.no_start)
    except OSError as exc:  # a root that cannot be looked into, say
        raise Failure(os_problem(exc)) from None


def check_health(config_file: str | None, port: int | None) -> int:
    """GET /healthz from the daemon this config describes, on this machine."""
    import urllib.error  # here: urllib.request alone is several MB the daemon never needs
    import urllib.request

    from anse_hw.config import find_config_file, load, sim_defaults
    from anse_hw.model import ANY_ADDRESS

    path = find_config_file(config_file)
    server = (load(path) if path else sim_defaults()).server
    host = "127.0.0.1" if server.host in ANY_ADDRESS else server.host
    url = f"http://{host}:{port or server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:
            print(f"{url}: {reply.status}")
            return OK
    except urllib.error.HTTPError as exc:  # 503: a watched sensor is stale
        print(f"{url}: {exc.code} {exc.read(300).decode(errors='replace')}")
    except OSError as exc:
        print(f"{url}: no answer ({exc})")
    return FAILURE


def resolve_config(args: argparse.Namespace) -> tuple[Config, str | None]:
    """The config, and the file it came from (None: the built-in --sim setup)."""
    import dataclasses

    from anse_hw.config import find_config_file, load, sim_defaults

    path = find_config_file(args.config)
    if path is None:
        if not args.sim:
            raise ConfigError(
                [
                    "no configuration: pass --config FILE (or set $ANSE_HW_CONFIG), "
                    "or run the simulation with --sim"
                ]
            )
        config = sim_defaults()
    else:
        config = load(path, sim=args.sim)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, **overrides))
    return config, path


def check_devices(config: Config) -> list[str]:
    """What `--check` can see without driving anything: serial ports and sysfs
    files that do not exist, a pin factory that cannot load (the one the
    daemon would use, opened and closed again; no pin is claimed), and I2C
    devices that do not answer at their address or are another chip."""
    from anse_hw.app.devices import i2c_problems, open_pin_factory
    from anse_hw.drivers.registry import SENSOR_DRIVERS, find
    from anse_hw.drivers.serial_sensor import port_problem

    problems = [
        config.problem(("sensors", index, key), problem)
        for index, sensor in enumerate(config.sensors)
        for key, problem in find(SENSOR_DRIVERS, sensor.type, sensor.driver).device_problems(
            sensor.options
        )
    ]
    problems += [
        config.problem(("actuators", index, "encoders", "port"), problem)
        for index, actuator in enumerate(config.actuators)
        if actuator.encoders and "port" in actuator.encoders and actuator.driver != "sim"
        for problem in [port_problem(actuator.encoders["port"])]
        if problem
    ]
    try:
        factory = open_pin_factory(config)
    except DriverError as exc:
        if exc.key:
            problems.append(config.problem(exc.key, exc.reason))
        else:
            problems.append(f"{config.where(('gpio', 'pin_factory'))}: {exc}")
    else:
        if factory is not None:
            factory.close()
    return problems + i2c_problems(config)


def run(args: argparse.Namespace) -> int:
    if args.safe_stop:
        from anse_hw.app import realtime, safestop
        from anse_hw.config import find_config_file

        # A busy machine must not delay it (the unit's LimitRTPRIO allows this).
        realtime.enter()
        # Never through resolve_config: a broken or missing file must not stop it.
        return safestop.run(find_config_file(args.config))
    return user_errors(lambda: start(args))


def start(args: argparse.Namespace) -> int:
    # Here, not at the top: --safe-stop must not wait for the web stack to load.
    import asyncio

    from anse_hw.app.daemon import Daemon, robot_state_dir
    from anse_hw.config import describe

    config, path = resolve_config(args)
    if args.check:
        problems = check_devices(config)
        if problems:
            raise ConfigError(problems)
        print(describe(config))
        print(f"state: {robot_state_dir(config, path)} (E-stop latch, control token, safe-stop)")
        print("config OK")
        return OK
    daemon = Daemon(config, args.debug, record=args.record, config_file=path)
    return asyncio.run(daemon.run())
