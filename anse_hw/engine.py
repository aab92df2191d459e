"""The nervous system: sensor phase → world model → reflex phase → actuator phase → broadcast.

Where the reading arrives, the actuators are commanded.  Each driver calls
`Engine.on_sample` from its own thread; under one lock the engine updates the
world model, decides, and drives the pins, all before a single event is
handed to the broadcast side (`publish`, which only queues and returns).  No
WebSocket client, no broadcast work, no log write sits between a reading and
an actuator (docs/safety.md S4).  A monitor thread turns a guard's silence into its
actuators' safe state (S2) and is also the heartbeat the systemd watchdog
checks (S8).  Which state is safe, and which reflex guards what, comes from
the config (anse_hw.kinds); nothing here knows about motors or relays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from anse_hw import events, views
from anse_hw.errors import Refused
from anse_hw.metrics import EngineStats
from anse_hw.model import Config, ReflexConfig
from anse_hw.operator import Decision, Hold, Operator
from anse_hw.readings import ActuatorDriver, Sample, SensorDriver
from anse_hw.worldmodel import WorldModel

log = logging.getLogger("anse_hw.engine")

Publish = Callable[[list[dict[str, Any]]], None]
TIMEOUT_REFLEX = "sensor_timeout"
FAULT_REFLEX = "sensor_fault"


class Engine:
    def __init__(
        self,
        config: Config,
        sensors: dict[str, SensorDriver],
        actuators: dict[str, ActuatorDriver],
        publish: Publish,
        on_crash: Callable[[BaseException], None],
        clock: Callable[[], float] = time.monotonic,
        debug: bool = False,
        latched: bool = False,
        heartbeat: float = 0.5,
        audience: Callable[[], bool] = lambda: True,
        on_latch: Callable[[str], None] | None = None,
    ) -> None:
        """`on_latch(reflex)` is told (on the sensor's thread, under the lock:
        it must only hand the work on) that a reflex latched the E-stop, so
        the latch gets written to disk; the stream waits, as for an
        operator's E-stop, until it calls `release`.

        `audience` says whether anything (a client, the recorder, the MQTT
        bridge) will see an event; asked under the lock for each one, so that
        with nobody there an event costs no dict, no JSON and no wake-up of the
        event loop, only its seq number."""
        self.config = config
        self.audience = audience
        self.sensors = sensors
        self.actuators = actuators
        self.publish = publish
        self.on_crash = on_crash
        self.on_latch = on_latch
        self.clock = clock
        self.debug = debug
        self.kinds = {s.name: s.kind for s in config.sensors}
        self.config_actuators = {a.name: a for a in config.actuators}
        self.reflexes: dict[str, list[ReflexConfig]] = {name: [] for name in sensors}
        for reflex in config.reflexes:
            self.reflexes[reflex.sensor].append(reflex)
        self.world = WorldModel(config, clock())
        self._lock = threading.Lock()
        self._seq = 0
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        self.heartbeat = clock()
        self.tick = min(0.1, max(0.01, min((s.max_age for s in config.sensors), default=1) / 5))
        #: The E-stop latch and the manual holds.
        self.desk = Operator(
            latched,
            heartbeat,
            {name: self.config_actuators[name].type for name in actuators},
            {name: a.safe_state for name, a in actuators.items()},
        )
        #: While the latch is being written, batches wait here in seq order
        #: (see `operator(hold=True)` and `release`).
        self._holding = 0
        self._held: list[list[dict[str, Any]]] = []
        #: What last put an actuator in its safe state, for the dashboard.
        self.last_stop: dict[str, Any] | None = None
        self.stats = EngineStats()
        #: Optional: every raw reading and fault, for the recorder (appends only).
        self.record_reading: Callable[[str, Sample, float], None] | None = None
        self.record_fault: Callable[[str, str, bool], None] | None = None
        self._made_safe = False  # set by the actuator phase, for the stop latency

    @property
    def latched(self) -> bool:
        """The E-stop latch is set: nothing leaves its safe state."""
        return self.desk.latched

    @property
    def holds(self) -> dict[str, Hold]:
        """The operator's manual holds, by actuator."""
        return self.desk.holds

    # -- lifecycle ---------------------------------------------------------

    def prepare(self) -> None:
        """S1: every actuator is in its safe state before the first reading can arrive."""
        with self._lock:
            for name, actuator in self.actuators.items():
                actuator.drive(actuator.safe_state)
                self.world.actuators[name] = actuator.state
            now = self.clock()
            for state in self.world.sensors.values():
                state.since = now

    def start(self) -> None:
        self.prepare()
        for name, sensor in self.sensors.items():
            sensor.start(
                lambda sample, n=name: self.on_sample(n, sample),
                lambda text, active, n=name: self.on_fault(n, text, active),
                self.on_crash,
            )
        self._monitor = threading.Thread(target=self._watch, name="monitor", daemon=True)
        self._monitor.start()

    def stop_all(self, reason: str) -> None:
        """Drive every actuator to its safe state and say so on the stream."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            for name, actuator in self.actuators.items():
                self._actuator_phase(name, actuator.safe_state, batch)
            if batch:
                self._send(batch)
        if batch:
            log.info("actuators in their safe state: %s", reason)

    def emergency_stop(self) -> None:
        """Safe states even if the lock is wedged: used when the daemon is failing."""
        acquired = self._lock.acquire(timeout=1.0)
        try:
            for actuator in self.actuators.values():
                try:
                    actuator.drive(actuator.safe_state)
                except Exception:
                    log.exception("could not put %s in its safe state", actuator.name)
        finally:
            if acquired:
                self._lock.release()

    def close(self) -> None:
        """Safe states, then stop the sensors and release every pin and port."""
        self._closing.set()
        self.stop_all("shutting down")
        for sensor in self.sensors.values():
            sensor.close()
        for actuator in self.actuators.values():
            actuator.close()
        if self._monitor:
            self._monitor.join(timeout=1)

    # -- the reflex arc ----------------------------------------------------

    def on_sample(self, name: str, sample: Sample) -> None:
        """Called from the sensor's own thread for every measurement."""
        if self._closing.is_set():
            return
        received = self.clock()
        if self.record_reading is not None:
            self.record_reading(name, sample, received)
        batch: list[dict[str, Any]] = []
        with self._lock:
            state = self.world.sensors[name]
            value = sample.value
            if not sample.valid or not state.kind.plausible(value):
                state.invalid += 1  # S3: never a value, never fresh
                return
            self._made_safe = False
            taken = received if sample.taken is None else min(sample.taken, received)
            if self.clock() - taken > state.max_age:
                # It sat in a buffer or waited out a stall of the control path:
                # old input may still stop an actuator, never move one.
                state.invalid += 1
                self._old_reading(name, value, batch)
            else:
                self.stats.readings[name] += 1
                self._sensor_phase(name, value, taken, batch)
                for reflex in self.reflexes[name]:
                    self._reflex_phase(reflex, value, batch)
            if self._made_safe:
                self.stats.stop_latency(self.clock() - received)
            # Under the lock so batches keep seq order; publish only queues.
            if batch:
                self._send(batch)
        if self.debug and len(batch) > 2:
            log.debug(
                "[reflex] %s: %g%s → actuator driven %.3f ms after the reading",
                name,
                sample.value,
                self.kinds[name].unit,
                (self.clock() - received) * 1000,
            )

    def _sensor_phase(self, name: str, value: float, taken: float, batch: list) -> None:
        self.world.record(name, value, taken)
        kind = self.kinds[name]
        self._emit(batch, events.SENSOR, events.sensor_data(name, value, kind.name, kind.unit))

    def _old_reading(self, name: str, value: float, batch: list) -> None:
        for reflex in self.reflexes[name]:
            if reflex.guard:
                self._reflex_phase(reflex, value, batch)
        state = self.world.sensors[name]
        if not state.old:
            state.old = True
            log.warning(
                "%s: readings older than %gs arrive; they can stop, not move", name, state.max_age
            )

    def _reflex_phase(self, reflex: ReflexConfig, value: float, batch: list) -> None:
        if reflex.latch:
            self._latching_reflex(reflex, value, batch)
            return
        if not reflex.holds(value) or self.world.actuators[reflex.actuator] == reflex.target:
            return
        if not reflex.guard and (
            self.desk.keeps(reflex.actuator) or not self.world.clear_for(reflex.actuator)
        ):
            return  # E-stop latched, an operator holds it, or a guard is not clear
        self.world.last_reflex = reflex.name
        self.stats.firings[reflex.name] += 1
        self._emit(
            batch,
            events.REFLEX,
            events.reflex_data(
                reflex.name, reflex.condition, sensor=reflex.sensor, value=round(value, 2)
            ),
        )
        self._actuator_phase(reflex.actuator, reflex.target, batch, cause=reflex.name)

    def _latching_reflex(self, reflex: ReflexConfig, value: float, batch: list) -> None:
        """`command: estop`: fires once, when it holds and the E-stop is not
        latched yet, even if a gentler guard has already stopped its actuator
        (a battery first low, then critical)."""
        if not reflex.holds(value) or self.desk.latched:
            return
        self.world.last_reflex = reflex.name
        self.stats.firings[reflex.name] += 1
        self._emit(
            batch,
            events.REFLEX,
            events.reflex_data(
                reflex.name, reflex.condition, sensor=reflex.sensor, value=round(value, 2)
            ),
        )
        self._carry_out(self.desk.estop(reflex.name), batch)
        if self.on_latch is not None:
            self._holding += 1
            self.on_latch(reflex.name)

    def _actuator_phase(self, name: str, target: str, batch: list, cause: str = "") -> None:
        actuator = self.actuators[name]
        safe = target == actuator.safe_state
        if safe:
            self.desk.made_safe(name, target)  # a guard beats a manual move
        if actuator.state == target and self.world.actuators[name] == target:
            return
        actuator.drive(target)
        self.stats.changes[(name, actuator.state)] += 1
        self._made_safe = self._made_safe or safe
        if safe:
            self.last_stop = {
                "actuator": name,
                "state": target,
                "cause": cause or "shutdown",
                "timestamp": events.timestamp(),
            }
        self.world.actuators[name] = actuator.state
        self._emit(
            batch,
            events.ACTUATOR,
            events.actuator_data(name, actuator.state, self.config_actuators[name].type),
        )

    def _send(self, batch: list[dict[str, Any]]) -> None:
        """Publish a batch, or keep it behind a latch write in progress.  Under the lock."""
        if self._holding:
            self._held.append(batch)
        else:
            self.publish(batch)

    def _emit(self, batch: list, event_type: str, data: dict[str, Any]) -> None:
        """Queue an event and the world-model update that follows every event."""
        self.world.total_events += 1
        if not self.audience():
            self._seq += 2  # nobody to tell; a client that joins starts from the snapshot
            return
        batch.append(self._event(event_type, data))
        batch.append(self._event(events.WORLDMODEL, self._world_data()))

    def _emit_world(self, batch: list) -> None:
        """Queue a world-model update on its own (a change no event carries)."""
        if not self.audience():
            self._seq += 1
            return
        batch.append(self._event(events.WORLDMODEL, self._world_data()))

    def _world_data(self) -> dict[str, Any]:
        return views.world_data(self.world, self.desk, self.last_stop, self.clock())

    def _event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        return events.make(event_type, self._seq, data)

    # -- faults and silence ------------------------------------------------

    def on_fault(self, name: str, text: str, active: bool) -> None:
        """A driver lost (active) or regained its device."""
        if self.record_fault is not None:
            self.record_fault(name, text, active)
        batch: list[dict[str, Any]] = []
        with self._lock:
            state = self.world.sensors[name]
            state.fault = text if active else None
            if not active:
                state.since, state.last_valid, state.value = self.clock(), None, None
            self._fault(name, FAULT_REFLEX, f"{name}: {text}", active, batch)
            self._send(batch)
        (log.warning if active else log.info)("%s: %s", name, text)

    def _fault(self, name: str, reflex: str, condition: str, active: bool, batch: list) -> None:
        if active:
            self.world.last_reflex = reflex
        self._emit(batch, events.REFLEX, events.reflex_data(reflex, condition, active, sensor=name))
        if active and name in self.world.watched:
            for guard in self.world.guards:
                if guard.sensor == name:
                    self._actuator_phase(guard.actuator, guard.target, batch, cause=reflex)

    def _watch(self) -> None:
        """S2: a sensor silent for max_age is stale, and a guard puts its actuators in
        their safe state."""
        try:
            while not self._closing.wait(self.tick):
                self.check_silence()
        except Exception as exc:
            self.on_crash(exc)

    def check_silence(self) -> None:
        """One monitor tick (replay calls it on its own clock)."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            now = self.clock()
            for name, state in self.world.sensors.items():
                if state.stale or state.fault or state.age(now) <= state.max_age:
                    continue
                state.stale = True
                condition = f"no valid reading from {name} for {state.max_age * 1000:g}ms"
                self._fault(name, TIMEOUT_REFLEX, condition, True, batch)
                log.warning("%s", condition)
            for decision in self.desk.lapse(now):
                self._carry_out(decision, batch)
            if batch:
                self._send(batch)
            self.heartbeat = now

    # -- the operator (docs/protocol.md, "The control API") -------------------

    def operator(
        self,
        action: str,
        source: str,
        actuator: str | None = None,
        command: str | None = None,
        hold: bool = False,
    ) -> dict[str, Any]:
        """Every command from the HTTP API, the dashboard and MQTT comes here, and
        takes the reflexes' lock and path: the pins are driven before this returns.

        action: "estop" | "reset" | "command" (with actuator and command).
        With `hold`, this command's events and everything after them wait
        until `release` (the caller writes the latch to disk in between: the
        stream must not show a latch a crash could still lose).
        Raises Refused with an HTTP status when it will not obey."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            if action == "estop":
                decision = self.desk.estop(source)
            elif action == "reset":
                decision = self.desk.reset(source)
            elif action == "command":
                decision = self.desk.command(
                    actuator, command, source, self.world.clear_for, self.clock()
                )
            else:
                raise Refused(400, f"unknown action {action!r}")
            self._carry_out(decision, batch)
            if hold:
                self._holding += 1
            if batch:
                self._send(batch)
            return decision.reply(self.world.actuators)

    def _carry_out(self, decision: Decision, batch: list) -> None:
        """An operator decision, on the reflexes' path: its event, then its drives."""
        if decision.event is None:
            return
        if decision.event["triggered"]:
            self.world.last_reflex = decision.event["reflex_name"]
        self._emit(batch, events.REFLEX, decision.event)
        for name, target in decision.drive:
            self._actuator_phase(name, target, batch, cause=decision.event["reflex_name"])

    def release(self, durable: bool | None) -> None:
        """End one `hold`: `durable` says whether the write got the latch to
        disk (None: not known yet).  When no hold is left, the batches kept
        meanwhile go out in their order."""
        with self._lock:
            if durable is not None:
                self._set_durable(durable)  # still holding: it queues behind the rest
            self._holding -= 1
            if not self._holding:
                held, self._held = self._held, []
                for batch in held:
                    self.publish(batch)

    def set_durable(self, durable: bool) -> None:
        """Whether the latch as it is now is on disk, learnt outside a hold
        (the write at start, or one that ended after its hold was released)."""
        with self._lock:
            self._set_durable(durable)

    def _set_durable(self, durable: bool) -> None:
        if durable == self.desk.durable:
            return
        self.desk.durable = durable
        batch: list[dict[str, Any]] = []
        self._emit_world(batch)
        if batch:
            self._send(batch)

    # -- views for the server ------------------------------------------------

    def snapshot_event(self) -> dict[str, Any]:
        """The worldmodel event a new client gets first; its seq marks where it joins."""
        with self._lock:
            data, seq = self._world_data(), self._seq
        data.update(views.snapshot_extras(self.config))
        return events.make(events.WORLDMODEL, seq, data)

    def stats_copy(self) -> EngineStats:
        with self._lock:
            return self.stats.copy()

    def healthy(self, within: float) -> bool:
        """The control path ticked recently: the monitor got the lock and ran."""
        return self.clock() - self.heartbeat <= within

    def health(self) -> dict[str, Any]:
        with self._lock:
            return views.health(self.world, self.desk, self.clock())
