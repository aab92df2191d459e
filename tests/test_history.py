"""The daemon's per-sensor history (anse_hw/history.py), on sequences alone:
what a reloaded dashboard draws first."""

from __future__ import annotations

from anse_hw.history import History


def test_readings_are_folded_into_one_mean_per_second():
    history = History(["front"], resolution=1.0, span=60.0)
    for at, value in [(100.1, 10), (100.5, 20), (100.9, 30), (101.2, 50)]:
        history.add("front", value, at)
    assert history.series(101.5) == {"front": [[100_000, 20.0], [101_000, 50.0]]}


def test_only_the_span_is_kept_and_memory_stays_bounded():
    history = History(["front"], resolution=1.0, span=10.0)
    for second in range(1000):
        for tenth in range(10):  # 10 Hz: ten readings a bucket
            history.add("front", second, second + tenth / 10)
    points = history.series(1000.0)["front"]
    assert [t for t, _ in points] == [s * 1000 for s in range(990, 1000)]
    assert len(history._series["front"].points) <= 11  # the ring, not the list


def test_a_silence_breaks_the_line_once_and_a_sparse_sensor_keeps_its_points():
    history = History(["cpu", "front"], resolution=1.0, span=60.0)
    history.add("cpu", 40.0, 10.0)
    history.add("cpu", 41.0, 12.0)  # every 2 s: no point in between, no gap either
    history.gap("cpu", 13.5)
    history.gap("cpu", 14.0)  # still silent: no second break
    history.add("cpu", 45.0, 20.0)
    assert history.series(21.0) == {
        "cpu": [[10_000, 40.0], [12_000, 41.0], [13_000, None], [20_000, 45.0]],
        "front": [],
    }


def test_a_gap_before_any_reading_draws_nothing():
    history = History(["front"])
    history.gap("front", 5.0)
    assert history.series(6.0) == {"front": []}
