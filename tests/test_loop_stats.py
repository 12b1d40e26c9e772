"""The fast loop's statistics stay the same size however long a session runs."""

from __future__ import annotations

import numpy as np

from track2_voice.loop import LoopStats
from track2_voice.timings import RecentTimings


def test_a_day_of_frames_keeps_a_fixed_window_of_timings():
    stats = LoopStats(model_ms=RecentTimings(keep=1000), overhead_ms=RecentTimings(keep=1000))
    day = 24 * 3600 * 1000 // 80  # 1,080,000 frames
    for i in range(0, day, 97):  # every 97th frame is enough to wrap the ring many times
        stats.frames += 1
        stats.model_ms.append(float(i % 100))
        stats.overhead_ms.append(0.5)
    assert stats.model_ms.total == stats.frames > 10_000
    assert len(stats.model_ms) == 1000 and stats.model_ms.values().nbytes == 8000
    newest = [float(i % 100) for i in range(0, day, 97)][-1000:]
    assert list(stats.model_ms) == newest  # oldest first, the newest kept
    s = stats.summary()
    assert s["model_ms_p50"] == round(float(np.percentile(newest, 50)), 3)
    assert s["overhead_ms_p99"] == 0.5


def test_since_gives_what_came_after_a_count():
    r = RecentTimings(keep=4)
    for i in range(3):
        r.append(i)
    assert list(r.since(1)) == [1.0, 2.0] and list(r.since(3)) == []
    for i in range(3, 9):
        r.append(i)
    assert list(r.since(6)) == [6.0, 7.0, 8.0]
    assert list(r.since(2)) == [5.0, 6.0, 7.0, 8.0]  # only the kept ones


def test_an_empty_session_summarises_to_zeros():
    assert LoopStats().summary()["model_ms_p99"] == 0.0
