"""The wheel maths on a simulated wheel: speed from counts, the speed
loop's hold under load and its anti-windup, and stall detection
(docs/safety.md, W1)."""

from __future__ import annotations

from simple_pid import PID

from anse_hw.plant import WheelPlant
from anse_hw.wheels import Gains, SpeedLoop, StallDetector, WheelSpeed

DT = 0.02  # the drive's 50 Hz control period
TARGET_DUTY = 0.5
MAX_RPS = 2.0
TARGET = TARGET_DUTY * MAX_RPS  # rev/s


def run(control, seconds: float, plant: WheelPlant, events=None) -> list[tuple[float, float]]:
    """Step `plant` under `control(now, count) -> duty` for `seconds`;
    `events(now, plant)` changes the world (a load, a jam) on the way."""
    speeds = []
    for i in range(1, round(seconds / DT) + 1):
        now = i * DT
        if events:
            events(now, plant)
        plant.duty = control(now, plant.counts)
        plant.step(DT)
        speeds.append((now, plant.speed))
    return speeds


def closed_loop(loop: SpeedLoop):
    return lambda now, count: loop.step(now, DT, TARGET_DUTY, count)


def test_speed_from_counts_over_a_window():
    meter = WheelSpeed(counts_per_rev=100, window=0.1)
    for i in range(20):
        meter.update(i * 0.01, i * 3)  # 3 counts per 10 ms: 3 rev/s
    assert abs(meter.speed - 3.0) < 1e-9
    meter.update(0.2, 57)  # no motion for a while
    meter.update(0.31, 57)
    assert meter.speed == 0.0


def test_pid_holds_the_speed_after_a_load_step():
    """A 30 % load (a slope, a carpet) slows an open-loop wheel by 30 %; the
    loop is back within 3 % of the commanded speed 1.5 s later."""

    def load(now, plant):
        plant.load = 0.3 if now >= 2.0 else 0.0

    loop = SpeedLoop(Gains(MAX_RPS), counts_per_rev=360)
    speeds = run(closed_loop(loop), 5.0, WheelPlant(MAX_RPS), load)
    settled = [s for t, s in speeds if t >= 3.5]
    assert all(abs(s - TARGET) <= 0.03 * TARGET for s in settled), min(settled)
    # Open loop, the same load leaves it 30 % slow: the loop is doing the work.
    open_speeds = run(lambda now, c: TARGET_DUTY, 5.0, WheelPlant(MAX_RPS), load)
    assert open_speeds[-1][1] < 0.75 * TARGET


def jam(now, plant):
    plant.load = 0.3
    plant.jammed = 3.0 <= now < 4.0


def test_anti_windup_no_overshoot_after_a_stall_clears():
    """Held still for 1 s while commanded, then let go: the wheel comes back
    to its speed overshooting by 10 % at most.  simple-pid's clamped
    integral alone (the same gains and limits) winds up against the jam and
    lurches 20 % past it, which is what the loop's anti-windup is for."""
    loop = SpeedLoop(Gains(MAX_RPS), counts_per_rev=360)
    speeds = run(closed_loop(loop), 7.0, WheelPlant(MAX_RPS), jam)
    after = [s for t, s in speeds if t >= 4.0]
    assert max(after) <= 1.10 * TARGET, max(after)
    assert abs(after[-1] - TARGET) <= 0.03 * TARGET

    meter = WheelSpeed(360)
    plain = PID(0.2, 2.0, 0.0, setpoint=TARGET, sample_time=None, output_limits=(-1.5, 0.5))

    def clamped_only(now, count):
        return TARGET_DUTY + plain(meter.update(now, count), dt=DT)

    speeds = run(clamped_only, 7.0, WheelPlant(MAX_RPS), jam)
    assert max(s for t, s in speeds if t >= 4.0) >= 1.2 * TARGET


def test_a_stop_resets_the_loop():
    loop = SpeedLoop(Gains(MAX_RPS), counts_per_rev=360)
    plant = WheelPlant(MAX_RPS)
    plant.load = 0.3
    run(closed_loop(loop), 3.0, plant)
    assert loop.step(3.02, DT, 0.0, plant.counts) == 0.0
    # Started again, it begins from the feed-forward, not the old integral.
    assert abs(loop.step(3.04, DT, TARGET_DUTY, plant.counts) - TARGET_DUTY) < 0.25


def test_stall_after_the_configured_time_only_while_commanded():
    stall = StallDetector(after=0.5)
    assert not stall.update(0.0, 0.6, 10)
    assert not stall.update(0.49, 0.6, 10)
    assert stall.update(0.5, 0.6, 10)
    assert not stall.update(0.6, 0.6, 11)  # it turned
    assert not stall.update(2.0, 0.05, 11)  # a duty too small to turn a motor
    assert not stall.update(2.4, 0.6, 11)
    assert stall.update(2.9, -0.6, 11)  # reverse stalls too


def test_plant_jam_stops_counting():
    plant = WheelPlant(MAX_RPS, counts_per_rev=100)
    plant.duty = 1.0
    for _ in range(50):
        plant.step(DT)
    moving = plant.counts
    assert moving > 100
    plant.jammed = True
    for _ in range(50):
        plant.step(DT)
    assert plant.counts == moving and plant.speed == 0.0
