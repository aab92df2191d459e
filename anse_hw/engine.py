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
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from anse_hw import events, motion, views
from anse_hw.conditions import Evaluator
from anse_hw.errors import Refused
from anse_hw.history import History
from anse_hw.kinds import ACTUATOR_KINDS, MOVING, STOPPED
from anse_hw.metrics import EngineStats
from anse_hw.model import LATCH, Config, LimitConfig, ReflexConfig
from anse_hw.operator import ESTOP_INPUT, Decision, Hold, Operator
from anse_hw.readings import ActuatorDriver, Sample, SensorDriver
from anse_hw.worldmodel import WorldModel

log = logging.getLogger("anse_hw.engine")

Publish = Callable[[list[dict[str, Any]]], None]
TIMEOUT_REFLEX = "sensor_timeout"
FAULT_REFLEX = "sensor_fault"
#: The reflex name of an actuator's own fault (a stalled wheel, lost encoders).
ACTUATOR_FAULT_REFLEX = "actuator_fault"
#: While a drive's wheel ramps up, the monitor steps it this often (50 Hz).
RAMP_STEP = 0.02


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
        """`on_latch(by)` is told (on the sensor's or the E-stop input's
        thread, under the lock: it must only hand the work on) that a reflex
        or the hardwired circuit latched the E-stop, so the latch gets written
        to disk; the stream waits, as for an operator's E-stop, until it
        calls `release`.

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
        #: The reflexes whose condition names each sensor, in config order.
        self.reflexes: dict[str, list[ReflexConfig]] = {
            name: [r for r in config.reflexes if name in r.sensors] for name in sensors
        }
        self.chains = {s.name: s.filters for s in config.sensors}
        self.filtering = {name: chain.start() for name, chain in self.chains.items()}
        max_age = {s.name: s.max_age for s in config.sensors}
        self.evaluators = {r.name: Evaluator(r.when, max_age) for r in config.reflexes}
        self.by_name = {r.name: r for r in config.reflexes}
        #: When each actuator last changed state (for min_on/min_off).
        self.changed_at: dict[str, float] = {}
        #: Each drive's ramp, cruise and limits (`_steer`), by name.
        self.bases = {
            a.name: motion.Base(a.max_speed, motion.Ramp(a.accel))
            for a in config.actuators
            if ACTUATOR_KINDS[a.type].steered and a.name in actuators
        }
        #: How each motor was last asked to move: (reverse, speed).
        self.aims: dict[str, motion.Aim] = {}
        #: The limit reflexes on each sensor.
        self.limits: dict[str, list[LimitConfig]] = {}
        for limit in config.limits:
            self.limits.setdefault(limit.sensor, []).append(limit)
            for name in limit.actuators:
                self.bases[name].caps[limit.name] = 0.0  # nothing read yet: no forward
        #: Actuators stopped by a fault of their own until a reset, and why.
        self.faulted: dict[str, str] = {}
        self.world = WorldModel(config, clock())
        #: The last minutes of every sensor, for the connect snapshot.
        self.history = History(self.kinds)
        #: This run: a dashboard that sees a new id knows the daemon restarted.
        self.run = {"id": secrets.token_hex(6), "started": events.timestamp()}
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
            frozenset(a.name for a in config.actuators if a.manual == LATCH),
            lambda name, state: type(self.actuators[name]).state_problem(
                self.config_actuators[name].options, state
            ),
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
        self._changed = False  # an actuator changed on this reading (for --debug)

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
            now = self.clock()
            for name, actuator in self.actuators.items():
                actuator.drive(actuator.safe_state)
                self.world.actuators[name] = actuator.state
                # A restart is a change: a compressor rests its min_off first.
                self.changed_at[name] = now
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
        for name, actuator in self.actuators.items():
            actuator.start(
                lambda text, n=name: self.actuator_fault(n, text),
                lambda data, n=name: self.actuator_measured(n, data),
            )
        self._monitor = threading.Thread(target=self._watch, name="monitor", daemon=True)
        self._monitor.start()

    def stop_all(self, reason: str) -> None:
        """Drive every actuator to its safe state and say so on the stream."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            for name, actuator in self.actuators.items():
                self._actuator_phase(name, actuator.safe_state, batch, why=reason)
            if batch:
                self._send(batch)
        if batch:
            log.info("actuators in their safe state: %s", reason)

    def emergency_stop(self) -> None:
        """Safe states even if the lock is wedged: used when the daemon is failing."""
        acquired = self._lock.acquire(timeout=1.0)
        try:
            for base in self.bases.values():
                base.ramp.halt(self.clock())  # no ramp step restarts a wheel
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
        changed = False
        with self._lock:
            state = self.world.sensors[name]
            value = sample.value
            if not sample.valid or not state.kind.plausible(value):
                state.invalid += 1  # S3: never a value, never fresh
                return
            self._made_safe = self._changed = False
            taken = received if sample.taken is None else min(sample.taken, received)
            # A for: that came due before this reading fires as it would have
            # at its moment, whoever (the monitor or this reading) gets here first.
            self._run_due(taken, batch)
            filtered = self.filtering[name].step(value, taken)
            if filtered is None:
                pass  # a filter swallowed it: no value, not fresh
            elif self.clock() - taken > state.max_age:
                # It sat in a buffer or waited out a stall of the control path:
                # old input may still stop an actuator, never move one.
                state.invalid += 1
                self._old_reading(name, filtered, batch)
            else:
                self.stats.readings[name] += 1
                self._sensor_phase(name, filtered, taken, batch)
                self._decide(name, filtered, taken, batch, guards_only=False)
                self._limit(name, filtered, batch)
            if self._made_safe:
                self.stats.stop_latency(self.clock() - received)
            # Under the lock so batches keep seq order; publish only queues.
            if batch:
                self._send(batch)
            changed = self._changed
        if self.debug and changed:  # also with nobody connected (no batch)
            log.debug(
                "[reflex] %s: %g%s → actuator driven %.3f ms after the reading",
                name,
                sample.value,
                self.kinds[name].unit,
                (self.clock() - received) * 1000,
            )

    def _sensor_phase(self, name: str, value: float, taken: float, batch: list) -> None:
        self.world.record(name, value, taken)
        self.history.add(name, value, time.time())
        kind = self.kinds[name]
        self._emit(batch, events.SENSOR, events.sensor_data(name, value, kind.name, kind.unit))

    def _old_reading(self, name: str, value: float, batch: list) -> None:
        # Judged as of now: it is the latest word from its sensor, however late.
        self._decide(name, value, self.clock(), batch, guards_only=True)
        self._limit(name, value, batch, lower_only=True)
        state = self.world.sensors[name]
        if not state.old:
            state.old = True
            log.warning(
                "%s: readings older than %gs arrive; they can stop, not move", name, state.max_age
            )

    def _decide(
        self, name: str, value: float, taken: float, batch: list, guards_only: bool
    ) -> None:
        """Every reflex that names `name`, on its filtered reading at its own time
        (so replay, on the same readings, decides the same).  All verdicts are
        brought up to date before any fires: a resume asks whether its guards
        are clear on this same reading."""
        for reflex in self.reflexes[name]:
            evaluator = self.evaluators[reflex.name]
            evaluator.update(name, value, taken)
            self.world.verdicts[reflex.name] = evaluator.holds(taken)
        for reflex in self.reflexes[name]:
            if self.world.verdicts[reflex.name].fires and (reflex.guard or not guards_only):
                self._reflex_phase(reflex, batch, sensor=name, value=round(value, 2))

    def _run_due(self, now: float, batch: list) -> None:
        """Re-evaluate, at its due moment, every condition whose for: has run
        out by `now` without a reading since: for: costs exactly its seconds."""
        for reflex_name, verdict in list(self.world.verdicts.items()):
            if verdict.fires or verdict.due is None or verdict.due > now:
                continue
            verdict = self.evaluators[reflex_name].holds(verdict.due)
            self.world.verdicts[reflex_name] = verdict
            if verdict.fires:
                self._reflex_phase(self.by_name[reflex_name], batch)

    def _resting(self, name: str) -> bool:
        """`name` changed state less than its min_on/min_off ago.  Only a move
        out of the safe state asks: a change to it is never delayed."""
        rest = self.config_actuators[name].rest(self.world.actuators[name])
        since = self.changed_at.get(name)
        return rest > 0 and since is not None and self.clock() - since < rest

    def next_due(self) -> float | None:
        """The earliest moment a pending for: runs out (None: none pending)."""
        return min(
            (v.due for v in self.world.verdicts.values() if v.due is not None and not v.fires),
            default=None,
        )

    def _reflex_phase(self, reflex: ReflexConfig, batch: list, **reading: Any) -> None:
        """A reflex whose condition fires: its command to each of its actuators
        not already there (a move only where nothing holds it back)."""
        if reflex.latch:
            self._latching_reflex(reflex, batch, reading)
            return
        targets = [a for a in reflex.actuators if not self._there(a, reflex)]
        if not reflex.guard:
            # E-stop latched, an operator holds it, a guard is not clear, or
            # it has not rested its min_on/min_off
            targets = [
                a
                for a in targets
                if not self.desk.keeps(a) and self.world.clear_for(a) and not self._resting(a)
            ]
        if not targets:
            log.debug("%s fired without changing anything (%s)", reflex.name, reflex.condition)
            return
        self._fired(reflex, batch, reading)
        why = reflex.condition
        if reading:
            unit = self.kinds[reading["sensor"]].unit
            why += f"; {reading['sensor']} read {reading['value']:g}{unit}"
        for actuator in targets:
            if reflex.twist is not None:
                self.bases[actuator].cruise = reflex.twist
            if reflex.how is not None:
                self.aims[actuator] = reflex.how
            self._actuator_phase(actuator, reflex.target, batch, cause=reflex.name, why=why)

    def _fired(self, reflex: ReflexConfig, batch: list, reading: dict[str, Any]) -> None:
        """A reflex acts: counted, and its event on the stream."""
        self.world.last_reflex = reflex.name
        self.stats.firings[reflex.name] += 1
        self._emit(
            batch, events.REFLEX, events.reflex_data(reflex.name, reflex.condition, **reading)
        )

    def _latching_reflex(self, reflex: ReflexConfig, batch: list, reading: dict[str, Any]) -> None:
        """`command: estop`: fires once, when it holds and the E-stop is not
        latched yet, even if a gentler guard has already stopped its actuators
        (a battery first low, then critical)."""
        if self.desk.latched:
            return
        self._fired(reflex, batch, reading)
        self._latch(self.desk.estop(reflex.name), reflex.name, batch)

    def _latch(self, decision: Decision, by: str, batch: list) -> None:
        """The E-stop latched here, not by an operator (the hardwired circuit,
        a reflex): the pins go safe at once, and the stream holds everything
        from here on until the daemon has the latch on disk (`on_latch(by)`
        starts that write, which ends in `release`), as for an operator's
        E-stop.  Under the lock, so on_latch must only hand the work on."""
        self._carry_out(decision, batch)
        if self.on_latch is not None:
            self._holding += 1
            self.on_latch(by)

    def _there(self, name: str, reflex: ReflexConfig) -> bool:
        """`name` is already where `reflex` would drive it.  A drive is there
        for a cruise that cruises it at the same twist, and for a stop when
        nothing wants it to move (its wheels may stand still under a limit
        while a cruise or an operator still wants them to turn)."""
        if name not in self.bases:
            there = self.world.actuators[name] == reflex.target
            return there and (reflex.how is None or self.actuators[name].how == reflex.how)
        if reflex.twist is not None:
            # A faulted drive takes no cruise: the first one after the reset moves it.
            return name in self.faulted or self.bases[name].cruise == reflex.twist
        return self._wanted(name) is None and self.world.actuators[name] == reflex.target

    def _actuator_phase(
        self, name: str, target: str, batch: list, cause: str = "", why: str = ""
    ) -> None:
        """Drive `name` to `target` (if it is not there), and say which reflex
        or operator (`cause`) did it and on what condition (`why`)."""
        actuator = self.actuators[name]
        safe = target == actuator.safe_state
        if safe:
            self.desk.made_safe(name, target)  # a guard beats a manual move
        if name in self.bases:
            self._steer(name, batch, cause, why, stop=safe)
            return
        how = None if safe else self.aims.get(name)
        there = actuator.state == target and self.world.actuators[name] == target
        if there and (how is None or actuator.how == how):
            return
        if how is not None:
            actuator.aim(*how)
        actuator.drive(target)
        self._changed_to(name, actuator.state, batch, cause, why)

    def _changed_to(
        self, name: str, state: str, batch: list, cause: str, why: str, **extra: Any
    ) -> None:
        """`name` is now in `state`, a new one: when (for min_on/min_off),
        counted, logged naming its `cause` and `why`, the last stop noted if
        it went safe, and its event (with `extra`: a drive's twist) on the
        stream.  Every actuator change, a drive's too, goes through here."""
        self.changed_at[name] = self.clock()
        self._changed = True
        log.info("%s %s by %s (%s)", name, state, cause or "shutdown", why)
        self.stats.changes[(name, state)] += 1
        if state == self.actuators[name].safe_state:
            self._made_safe = True
            self.last_stop = {
                "actuator": name,
                "state": state,
                "cause": cause or "shutdown",
                "timestamp": events.timestamp(),
            }
        self.world.actuators[name] = state
        self._emit(
            batch,
            events.ACTUATOR,
            events.actuator_data(name, state, self.config_actuators[name].type, **extra),
        )

    # -- drives (docs/safety.md M1) -------------------------------------------

    def _wanted(self, name: str) -> motion.Twist | None:
        """The twist drive `name` is asked for: the operator's held one, else
        its cruise's (None: nothing asks it to move)."""
        hold = self.desk.holds.get(name)
        if hold is not None and hold.twist is not None:
            return hold.twist
        return self.bases[name].cruise

    def _steer(self, name: str, batch: list, cause: str, why: str, stop: bool = False) -> None:
        """THE rule for a drive, the one place its wheels are decided
        (docs/safety.md M1).  Nothing moves it after a stop (`stop`: a guard,
        an E-stop, a lapse, a manual stop, shutdown), while the E-stop is
        latched, or while a guard of it calls for a stop or is in doubt;
        else the operator's held twist, else its cruise's, with forward
        capped by the lowest of its limits (reverse and turning free), mixed
        to wheel duties of at most max_speed.  A slower duty and a stop are
        applied at once; only speeding up ramps (`_step_ramps`)."""
        actuator = self.actuators[name]
        base = self.bases[name]
        if stop:
            base.cruise = None
        wanted = None if stop or name in self.faulted else self._wanted(name)
        twist = motion.ZERO
        if wanted is not None and not self.desk.latched and self.world.quiet_for(name):
            twist = motion.cap_forward(wanted, base.cap())
        wheels = motion.mix(twist, base.max_speed)
        now = self.clock()
        if wheels == motion.ZERO:
            base.ramp.halt(now)
            actuator.drive(STOPPED)
        else:
            actuator.set_wheels(*base.ramp.aim(wheels, now))
        state = MOVING if wheels != motion.ZERO else STOPPED
        # Hundredths on the wire: a limit that follows a noisy sensor sends
        # an event per 1 % of speed, not one per reading.
        shown = (round(twist[0], 2) + 0.0, round(twist[1], 2) + 0.0)
        if state == self.world.actuators[name] and shown == base.twist:
            return
        base.twist = shown
        twist_data = {"linear": shown[0], "angular": shown[1]}
        if state != self.world.actuators[name]:
            self._changed_to(name, state, batch, cause, why, **twist_data)
            return
        # Still moving, at another speed: on the stream, not a change of state.
        self._changed = True
        log.debug("%s at %s by %s (%s)", name, shown, cause, why)
        kind = self.config_actuators[name].type
        self._emit(batch, events.ACTUATOR, events.actuator_data(name, state, kind, **twist_data))

    def _limit(
        self, sensor: str, value: float | None, batch: list, lower_only: bool = False
    ) -> None:
        """The limits on `sensor` cap their drives by its reading (None: it
        has none: no forward).  `lower_only`: an old reading, which may slow
        a drive but never speed it up."""
        for limit in self.limits.get(sensor, ()):
            allowed = motion.limit_cap(value, limit.full_at, limit.zero_at)
            for name in limit.actuators:
                base = self.bases[name]
                cap = min(allowed, base.caps[limit.name]) if lower_only else allowed
                if cap == base.caps[limit.name]:
                    continue
                base.caps[limit.name] = cap
                if self._wanted(name) is not None:
                    read = "no reading" if value is None else f"{value:g}"
                    why = f"{sensor} {read}: forward capped at {cap:.2f}"
                    self._steer(name, batch, limit.name, why)

    def _step_ramps(self, now: float) -> None:
        """One step of every drive whose wheels are still speeding up."""
        for name, base in self.bases.items():
            if base.ramp.ramping:
                self.actuators[name].set_wheels(*base.ramp.step(now))

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
            self._restart(name)
            if not active:
                state.since, state.last_valid, state.value = self.clock(), None, None
            self._fault(name, FAULT_REFLEX, f"{name}: {text}", active, batch)
            self._send(batch)
        (log.warning if active else log.info)("%s: %s", name, text)

    def actuator_fault(self, name: str, text: str) -> None:
        """An actuator's own fault (a drive's wheel stalled, its encoders
        lost; the driver has stopped it already): its safe state, and it
        stays there until a reset (docs/safety.md, W1)."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            self.faulted[name] = text
            self.world.last_reflex = ACTUATOR_FAULT_REFLEX
            condition = f"{name}: {text}"
            data = events.reflex_data(ACTUATOR_FAULT_REFLEX, condition, True, actuator=name)
            self._emit(batch, events.REFLEX, data)
            safe = self.actuators[name].safe_state
            self._actuator_phase(name, safe, batch, cause=ACTUATOR_FAULT_REFLEX, why=condition)
            self._send(batch)
        log.error("%s: %s: in its safe state until POST /api/reset", name, text)

    def _clear_faults(self) -> None:
        """A reset clears the actuators' faults, except where the cause is
        still there (encoders still lost).  Under the lock."""
        for name in list(self.faulted):
            still = self.actuators[name].reset_fault()
            if still is None:
                del self.faulted[name]
            else:
                self.faulted[name] = still

    def actuator_measured(self, name: str, data: dict[str, Any]) -> None:
        """What an actuator measured (a drive's wheel speeds), on its event."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            twist = self.bases[name].twist if name in self.bases else None
            extra = {"linear": twist[0], "angular": twist[1]} if twist else {}
            kind = self.config_actuators[name].type
            state = self.world.actuators[name]
            self._emit(
                batch, events.ACTUATOR, events.actuator_data(name, state, kind, **extra, **data)
            )
            self._send(batch)

    def _fault(self, name: str, reflex: str, condition: str, active: bool, batch: list) -> None:
        if active:
            self.world.last_reflex = reflex
            self.history.gap(name, time.time())
        self._emit(batch, events.REFLEX, events.reflex_data(reflex, condition, active, sensor=name))
        if active:
            self._limit(name, None, batch)  # no reading: no forward
        if active and name in self.world.watched:
            for guard in self.world.guards:
                if name in guard.sensors:
                    for actuator in guard.actuators:
                        self._actuator_phase(
                            actuator, guard.target, batch, cause=reflex, why=condition
                        )

    def _restart(self, name: str) -> None:
        """After a fault or silence, readings from before the gap shape no new
        value: the filters start afresh and no rate spans the gap."""
        self.filtering[name] = self.chains[name].start()
        for reflex in self.reflexes[name]:
            self.evaluators[reflex.name].forget(name)

    def _watch(self) -> None:
        """S2: a sensor silent for max_age is stale, and a guard puts its actuators in
        their safe state."""
        try:
            while not self._closing.wait(self._wait()):
                self.check_silence()
        except Exception as exc:
            self.on_crash(exc)

    def _wait(self) -> float:
        """Until the next tick, or the next for: that runs out if sooner."""
        with self._lock:
            due = self.next_due()
            tick = self.tick
            if any(base.ramp.ramping for base in self.bases.values()):
                tick = min(tick, RAMP_STEP)
        return tick if due is None else min(tick, max(0.0, due - self.clock()))

    def check_silence(self) -> None:
        """One monitor tick (replay calls it on its own clock)."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            now = self.clock()
            self._run_due(now, batch)
            for name, state in self.world.sensors.items():
                if state.stale or state.fault or state.age(now) <= state.max_age:
                    continue
                state.stale = True
                self._restart(name)
                condition = f"no valid reading from {name} for {state.max_age * 1000:g}ms"
                self._fault(name, TIMEOUT_REFLEX, condition, True, batch)
                log.warning("%s", condition)
            for decision in self.desk.lapse(now):
                self._carry_out(decision, batch)
            self._step_ramps(now)
            if batch:
                self._send(batch)
            self.heartbeat = now

    # -- the operator (docs/protocol.md, "The control API") -------------------

    def operator(
        self,
        action: str,
        source: str,
        actuator: str | None = None,
        command: str | dict | None = None,
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
                self._clear_faults()
            elif action == "command":
                if actuator in self.faulted and command != "stop":
                    why = self.faulted[actuator]
                    raise Refused(409, f"{actuator} is stopped by a fault ({why}): reset first")
                decision = self.desk.command(
                    actuator, command, source, self._may_move, self.clock()
                )
            else:
                raise Refused(400, f"unknown action {action!r}")
            self._carry_out(decision, batch)
            if hold:
                self._holding += 1
            if batch:
                self._send(batch)
            return decision.reply(self.world.actuators)

    def estop_circuit(self, opened: bool) -> None:
        """The hardwired E-stop circuit changed (from gpiozero's edge callback).
        Opening latches the E-stop at once, under the reflexes' lock, its
        events held until the latch is on disk (`_latch`).  Closing only
        allows a reset."""
        batch: list[dict[str, Any]] = []
        with self._lock:
            self.desk.circuit_open = opened
            if opened:
                self._latch(
                    self.desk.estop("the hardwired E-stop", ESTOP_INPUT), ESTOP_INPUT, batch
                )
            else:
                log.info("hardwired E-stop circuit closed: POST /api/reset releases the latch")
                self._emit_world(batch)
            if batch:
                self._send(batch)

    def _may_move(self, name: str) -> bool:
        """An operator may move `name`: its guards are clear, or, for a drive,
        quiet (a driver must be able to steer, and back away, inside a
        guard's hysteresis band; a guard that holds still refuses)."""
        return self.world.quiet_for(name) if name in self.bases else self.world.clear_for(name)

    def _carry_out(self, decision: Decision, batch: list) -> None:
        """An operator decision, on the reflexes' path: its event, then its drives."""
        if decision.event is None:
            return
        if decision.event["triggered"]:
            self.world.last_reflex = decision.event["reflex_name"]
        self._emit(batch, events.REFLEX, decision.event)
        for name, target in decision.drive:
            hold = self.desk.holds.get(name)
            if hold is not None and hold.how is not None:
                self.aims[name] = hold.how
            self._actuator_phase(
                name,
                target,
                batch,
                cause=decision.event["reflex_name"],
                why=decision.event["condition"],
            )

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
            data["history"] = self.history.series(time.time())
        data["run"] = self.run
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
