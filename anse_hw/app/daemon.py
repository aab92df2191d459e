"""Running the daemon: build drivers from config, start the engine and server,
and make sure every way out leaves the motors stopped (docs/safety.md S5).

The ways out: a clean stop (any terminating signal a handler can catch, an
unhandled exception in any thread, the guardian's death) drives every
actuator to its safe state and releases the pins before the process ends;
the deaths no handler sees (SIGKILL, the OOM killer, a segfault) are the
guardian's (anse_hw.app.guardian), or systemd's ExecStopPost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anse_hw import __version__, statefile
from anse_hw.app import realtime, safestop
from anse_hw.app.devices import (
    build_actuators,
    build_estop,
    build_sensors,
    close_all,
    open_pin_factory,
    shared_i2c,
)
from anse_hw.app.guardian import Guardian, GuardianError
from anse_hw.app.logsetup import say_now
from anse_hw.app.sdnotify import Notifier
from anse_hw.config import describe
from anse_hw.drivers.estop import EstopInput
from anse_hw.engine import Engine
from anse_hw.errors import FAILURE, OK, DriverError
from anse_hw.model import ANY_ADDRESS, Config, RecordingConfig
from anse_hw.readings import ActuatorDriver, SensorDriver
from anse_hw.web import (
    TOKEN_FILE,
    ControlApi,
    Gate,
    Hub,
    Latch,
    LogFeed,
    load_token,
    operator_hint,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import Server

    from anse_hw.mqtt.bridge import MqttBridge

log = logging.getLogger("anse_hw")

SWITCH_INTERVAL = 0.0005  # seconds; see Daemon.run

#: Every signal whose default action ends the process and that a handler can
#: catch.  Not SIGKILL and SIGSTOP (no handler can: the guardian covers a
#: kill); not SEGV, BUS, FPE and ILL (a fault of this process itself, after
#: which Python cannot go on: the default death, then the guardian); not
#: SIGPIPE and SIGXFSZ, which Python ignores so that the write fails instead
#: (a client that vanished, a recording at the file-size limit): they end
#: nothing, and must not stop a robot either.
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name)
    for name in (
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGTRAP",
        "SIGABRT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGXCPU",
        "SIGVTALRM",
        "SIGPROF",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    )
    if hasattr(signal, name)
) + (tuple(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)) if hasattr(signal, "SIGRTMIN") else ())
#: How a user stops the daemon on purpose (a closed terminal is one): exit 0.
#: Any other signal is something going wrong around it: exit 1.
CLEAN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def signal_name(number: int) -> str:
    """ "SIGTERM", or "SIGRTMIN+3" for a real-time signal."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIGRTMIN+{number - signal.SIGRTMIN}"


def robot_state_dir(config: Config, config_file: str | None) -> Path:
    """Where this robot keeps its E-stop latch, token and safe-stop record."""
    return statefile.robot_state_dir(
        config.state_dir, config.robot_id, config_file, safestop.on_fakes(config)
    )


def no_guardian_because(config: Config) -> str | None:
    """Why no guardian is needed here, or None."""
    if os.environ.get("NOTIFY_SOCKET"):
        return "under systemd, whose ExecStopPost runs --safe-stop after every exit"
    if os.getpid() == 1:
        return (
            "PID 1 (a container): every process in it ends with this one; "
            "after a kill, run --safe-stop with the same config"
        )
    if safestop.on_fakes(config):
        return "no actuator drives a pin"
    return None


def raise_fd_limit() -> None:
    """Each WebSocket client is a file descriptor; 1024 is a common soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tune_process() -> None:
    """Room for many clients' sockets, and a short GIL switch interval: a
    sensor thread with a reading waits for the GIL while the event loop fans
    out, and Python's default 5 ms would be the reflex arc's worst case.
    0.5 ms bounds that wait at a small cost in throughput."""
    raise_fd_limit()
    sys.setswitchinterval(SWITCH_INTERVAL)


@dataclass
class Stack:
    """What `Daemon._compose` wires up and `_shut_down` takes apart."""

    hub: Hub
    bridge: MqttBridge | None
    server: Server | None = None
    mqtt: asyncio.Task | None = None
    estop: EstopInput | None = None


class Daemon:
    def __init__(
        self,
        config: Config,
        debug: bool = False,
        pin_factory: Any = None,
        sensors: Callable[[Config, Any], dict[str, SensorDriver]] = build_sensors,
        record: str | None = None,
        config_file: str | None = None,
        state: Path | None = None,
    ) -> None:
        """`pin_factory` overrides the one named in the config (the benchmarks
        pass a MockFactory whose pins record when they change); `sensors`
        builds the sensors (replay feeds recorded readings); `record` is
        `--record DIR`; `config_file` the file the config came from (the
        robot's identity when it has no robot_id); `state` overrides the
        robot's state directory (replay's is thrown away)."""
        self.config = config
        self.config_file = config_file
        self.state = state or robot_state_dir(config, config_file)
        self.guardian: Guardian | None = None
        self.debug = debug
        self.pin_factory = pin_factory
        self.build_sensors = sensors
        rec = config.recording
        if record is not None:  # --record DIR wins over recording.dir, keeps its size and count
            rec = dataclasses.replace(rec, dir=record) if rec else RecordingConfig(record)
        self.recorder = None
        if rec:
            # Optional parts are imported only when configured: mcap and
            # aiomqtt/paho cost several MB of a Pi Zero's memory otherwise.
            from anse_hw.recording import Recorder

            self.recorder = Recorder(rec.dir, config.text, rec.max_mb, rec.keep, describe(config))
            self.recorder.claim("--record" if record is not None else "recording.dir")
        self.live = None
        if config.foxglove:
            from anse_hw.foxglove import LiveView

            self.live = LiveView(
                config.foxglove.host, config.foxglove.port, (s.name for s in config.sensors)
            )
            self.live.start()
            log.info("✓ Foxglove live view: ws://%s:%d", config.foxglove.host, self.live.port)
        self.notifier = Notifier()
        self.exit_code = OK
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Latch writes a reflex started (kept: the loop holds tasks weakly).
        self._latch_writes: set[asyncio.Task] = set()
        self.engine: Engine | None = None
        self.log_feed: LogFeed | None = None

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # First: a signal during the start stops it as cleanly as a later one.
        self._handle_signals()
        tune_process()
        self._banner()
        api = self._control()
        self._guard()  # before any pin is claimed
        try:
            code = await self._serve(api)
        except DriverError:  # a failed start: what it opened is closed again
            self._dismiss_guardian()
            raise
        self._dismiss_guardian()
        return code

    async def _serve(self, api: ControlApi) -> int:
        """Open the drivers, serve until told to stop, then stop everything."""
        # The log's recent lines, for operators' dashboards (from here on).
        self.log_feed = LogFeed()
        logging.getLogger().addHandler(self.log_feed)
        try:
            return await self._serve_composed(api)
        finally:
            logging.getLogger().removeHandler(self.log_feed)

    async def _serve_composed(self, api: ControlApi) -> int:
        stack = self._compose(api)
        stack.server = await self._listen(stack.hub)
        previous_hook = threading.excepthook
        threading.excepthook = lambda args: self.crash(args.exc_value)
        try:
            await self._run_until_stopped(stack, api)
        finally:
            await self._shut_down(stack)
            threading.excepthook = previous_hook
            final = ", ".join(f"{n} {s}" for n, s in self.engine.world.actuators.items())
            log.info("anse-hw stopped; %s; pins released (exit %d)", final, self.exit_code)
        return self.exit_code

    def _compose(self, api: ControlApi) -> Stack:
        """The drivers, the sinks and the engine that feeds them, wired up
        (nothing runs yet).  The sinks exist before the engine, which is
        handed their `offer`s; they reach the engine through `self`."""
        # Threads created from here until realtime.leave() (every sensor thread,
        # the safety monitor) inherit a real-time priority where the system allows.
        if realtime.enter():
            log.info("✓ Sensor and monitor threads run at real-time priority %d", realtime.PRIORITY)
        pin_factory = self.pin_factory or open_pin_factory(self.config)
        i2c = shared_i2c(self.config)
        actuators = build_actuators(self.config, pin_factory, i2c)
        try:
            sensors = self.build_sensors(self.config, pin_factory, i2c)
        except Exception:
            close_all(actuators.values())
            raise
        try:
            estop = build_estop(self.config, pin_factory)
        except Exception:
            close_all((*actuators.values(), *sensors.values()))
            raise
        bridge = None
        if self.config.mqtt:
            from anse_hw.mqtt.bridge import MqttBridge

            bridge = MqttBridge(self.config, self._snapshot, api.run)
        hub = Hub(
            self.config.server,
            self._snapshot,
            self._health,
            self.debug,
            api,
            stats=lambda: self.engine.stats_copy(),
            mqtt=bridge.state if bridge else None,
            log_feed=self.log_feed,
        )
        stack = Stack(hub, bridge, estop=estop)
        self.engine = self._engine(sensors, actuators, stack)
        for name, device in (*sensors.items(), *actuators.items()):
            log.info("✓ %s: %s", name, device.describe())
        if estop:
            log.info("✓ estop: %s", estop.describe())
        else:
            log.info("No hardwired E-stop (estop: {pin: N}): only the dashboard's and MQTT's")
        return stack

    def _engine(
        self,
        sensors: dict[str, SensorDriver],
        actuators: dict[str, ActuatorDriver],
        stack: Stack,
    ) -> Engine:
        """The engine, publishing to every sink; the recorder also gets raw readings."""
        sinks = [stack.hub.publish] + ([stack.bridge.offer] if stack.bridge else [])
        # The recorder and the live view also get every raw reading and fault.
        raw = [sink for sink in (self.recorder, self.live) if sink]
        sinks += [sink.offer for sink in raw]
        engine = Engine(
            self.config,
            sensors,
            actuators,
            self._publisher(sinks),
            self.crash,
            debug=self.debug,
            latched=self._latched,
            heartbeat=self.config.server.heartbeat,
            # The recorder, the live view and the bridge see everything;
            # otherwise only a connected client makes an event worth building.
            audience=(lambda: True) if stack.bridge or raw else stack.hub.listening,
            on_latch=lambda by: self._save_latch(stack.hub.api, by),
        )
        if raw:
            engine.record_reading = _each([sink.reading for sink in raw])
            engine.record_fault = _each([sink.fault for sink in raw])
        if self.recorder:
            self.recorder.start()
        return engine

    def _save_latch(self, api: ControlApi, by: str) -> None:
        """A reflex or the hardwired circuit latched the E-stop, on its own
        thread under the engine's lock: the latch is written from the loop,
        so that thread never waits for the disk (a loop already closed: the
        daemon is ending)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_latch_write, api, by)

    def _start_latch_write(self, api: ControlApi, by: str) -> None:
        task = asyncio.ensure_future(self._write_latch(api, by))
        self._latch_writes.add(task)
        task.add_done_callback(self._latch_writes.discard)

    async def _write_latch(self, api: ControlApi, by: str) -> None:
        problem = await api.persist(by)
        if problem:
            log.error("E-stop from %s: latch held in memory only: %s", by, problem)

    async def _listen(self, hub: Hub) -> Server:
        """The port, or one line saying why not (the engine is closed again)."""
        try:
            return await hub.start()
        except OSError as exc:
            self.engine.close()
            raise DriverError(
                f"cannot listen on {self.config.server.host}:"
                f"{self.config.server.port}: "
                f"{os.strerror(exc.errno) if exc.errno else exc} (another anse-hw? try --port)"
            ) from None

    async def _run_until_stopped(self, stack: Stack, api: ControlApi) -> None:
        """Start the engine, say where to connect, tell systemd, and wait for a stop."""
        self.engine.start()
        if stack.estop:
            stack.estop.start(self.engine.estop_circuit)
        realtime.leave()  # the event loop itself stays an ordinary thread
        log.info("✓ Engine initialized, world model ready (actuators in their safe state)")
        if self.guardian:
            self._loop.add_reader(self.guardian.watch_fd, self._guardian_gone)
        safestop.write_record(self.config, self.state, self.config_file)
        sockets = stack.server.sockets if stack.server else ()
        self._announce(sockets[0].getsockname()[1] if sockets else 0)
        # Up (port bound, drivers open): only now is the latch rewritten.
        await api.save_at_start()
        watchdog = asyncio.create_task(self._watchdog()) if self.notifier.enabled else None
        if stack.bridge:
            stack.mqtt = asyncio.create_task(stack.bridge.run())
        self.notifier.notify("READY=1\nSTATUS=running")
        await self._stop.wait()
        if watchdog:
            watchdog.cancel()

    async def _shut_down(self, stack: Stack) -> None:
        """Motors first, then the sinks, then the clients and the port."""
        self.notifier.notify("STOPPING=1")
        # Off the loop thread: if a wedged driver holds the engine, the loop
        # still handles a second signal (which forces the exit).
        await self._loop.run_in_executor(None, self.engine.close)
        if stack.estop:
            stack.estop.close()
        if stack.bridge:
            await stack.bridge.close(stack.mqtt)
        if self.recorder:
            await self._loop.run_in_executor(None, self.recorder.close)
        if self.live:
            await self._loop.run_in_executor(None, self.live.close)
        await stack.hub.flush(timeout=1.0)
        stack.server.close()
        await stack.server.wait_closed()

    def _guard(self) -> None:
        """Start the guardian where nothing else covers a death no handler sees."""
        reason = no_guardian_because(self.config)
        if reason:
            log.info("No guardian: %s", reason)
            return
        try:
            self.guardian = Guardian.start(str(self.state), self.config_file)
        except GuardianError as exc:
            raise DriverError(str(exc)) from None
        log.info(
            "✓ Guardian (pid %d) stops the actuators if this process dies without stopping them",
            self.guardian.pid,
        )

    def _guardian_gone(self) -> None:
        """Nothing would stop the motors if this process died now: stop."""
        self._loop.remove_reader(self.guardian.watch_fd)
        log.error(
            "guardian gone (%s): stopping, as nothing would cover a crash",
            self.guardian.how_it_ended(),
        )
        self.exit_code = FAILURE
        self._stop.set()

    def _dismiss_guardian(self) -> None:
        """Everything stopped and released: the guardian may go quietly."""
        if self.guardian:
            self._loop.remove_reader(self.guardian.watch_fd)
            self.guardian.dismiss()

    def _publisher(self, sinks: list[Callable[[list[dict[str, Any]]], None]]) -> Callable:
        """The engine's `publish`: hands each batch to every sink (the WebSocket
        hub, the MQTT bridge) on the event loop, and returns at once."""
        loop = self._loop

        def fan_out(batch: list[dict[str, Any]]) -> None:
            for sink in sinks:
                sink(batch)

        def publish(batch: list[dict[str, Any]]) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(fan_out, batch)

        return publish

    def _control(self) -> ControlApi:
        """The E-stop latch as it was left, the operator token, the API."""
        # A real robot adopts a latch left in the shared directory by versions
        # that kept one state for every robot of a user.
        legacy = (
            None if safestop.on_fakes(self.config) else statefile.state_dir(self.config.state_dir)
        )
        latch = Latch(self.state, legacy)
        self._latched = latch.load()
        configured = self.config.server.control_token_file
        self._token_file = Path(configured) if configured else self.state / TOKEN_FILE
        try:
            self._token = load_token(self._token_file)
        except OSError as exc:
            raise DriverError(str(exc)) from None
        gate = Gate(self._token, self.config.server.allowed_origins)
        return ControlApi(lambda: self.engine, gate, latch)

    def _snapshot(self) -> dict[str, Any]:
        return self.engine.snapshot_event()

    def _health(self) -> dict[str, Any]:
        return self.engine.health()

    def _handle_signals(self) -> None:
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        name = signal_name(sig)
        if self._stop.is_set():  # a second Ctrl-C: the shutdown itself is stuck
            # Straight to stderr: the log queue's writer may not get another turn.
            say_now(f"{name} received again: stopping the motors and exiting now")
            # A wedged driver may hang this stop too: give it two seconds, then go
            # (without the guardian's clean byte, so it, or systemd's
            # ExecStopPost, runs --safe-stop next).
            if self.engine is not None:
                stopper = threading.Thread(target=self.engine.emergency_stop, daemon=True)
                stopper.start()
                stopper.join(2.0)
            os._exit(FAILURE)
        log.info("%s received: stopping motors and shutting down", name)
        if sig not in CLEAN_SIGNALS:
            self.exit_code = FAILURE
        self._stop.set()

    def request_stop(self) -> None:
        """Shut down as on SIGTERM; callable from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    def crash(self, exc: BaseException | None) -> None:
        """Any thread's unhandled exception: stop the motors now, then exit 1."""
        if self.engine is not None:
            self.engine.emergency_stop()
        log.error(
            "fatal error: %s: %s — motors stopped",
            type(exc).__name__,
            exc,
            exc_info=exc if not isinstance(exc, DriverError) else None,
        )

        def fail() -> None:
            self.exit_code = FAILURE
            self._stop.set()

        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fail)

    async def _watchdog(self) -> None:
        """WATCHDOG=1 at half of WATCHDOG_USEC, only while the control path ticks (S8)."""
        interval = self.notifier.watchdog_interval
        if not interval:
            return
        period = interval / 2
        while True:
            if self.engine.healthy(within=max(period, 3 * self.engine.tick)):
                self.notifier.notify("WATCHDOG=1")
            else:
                log.error("control path stalled: withholding the systemd watchdog ping")
            await asyncio.sleep(period)

    def _banner(self) -> None:
        rule = "=" * 70
        log.info(rule)
        log.info("anse-hw %s — ANSE nervous system on hardware", __version__)
        log.info(rule)
        log.info("✓ Config: %s", self.config.source)
        log.info("✓ State: %s (E-stop latch, control token, safe-stop record)", self.state)

    def _announce(self, port: int) -> None:
        """`port` is the one listened on: server.port, or the free one the
        system chose for port 0."""
        s = self.config.server
        shown = "localhost" if s.host in ANY_ADDRESS else s.host
        log.info("✓ WebSocket server running on ws://%s:%d", s.host, port)
        log.info("Dashboard:  http://%s:%d/", shown, port)
        log.info("Stream:     ws://%s:%d   Health: http://%s:%d/healthz", shown, port, shown, port)
        # As Jupyter does: a URL that logs the dashboard in, with the token on a
        # terminal only.  Through the log queue like every other line, so no
        # other line can split it.
        url = f"http://{shown}:{port}/"
        terminal = sys.stderr.isatty()
        log.info("Operator:   %s", operator_hint(url, self._token, self._token_file, terminal))
        if self._latched:
            log.warning("E-STOP LATCHED from the last run: POST /api/reset to release")
        log.info("Waiting for connections...")


def _each(calls: list[Callable[..., None]]) -> Callable[..., None]:
    """One callable that calls each of `calls` (the engine has one hook for
    raw readings, and two sinks may want them)."""
    if len(calls) == 1:
        return calls[0]

    def every(*args: Any) -> None:
        for call in calls:
            call(*args)

    return every
