"""The bus never blocks the producer: drop-oldest, counted per subscriber; typed filters; the
record format of typed events."""

from __future__ import annotations

import asyncio
import threading

from orchestrator.brain.events import StateChanged
from orchestrator.bus import Bus
from track2_voice.events import FrameEvent, Rollover, SceneLine, UserSpeechStarted


def line(i: int) -> SceneLine:
    return SceneLine(index=i, t=0.0, line=i, text="hi", start="time")


def test_a_subscriber_that_never_reads_loses_the_oldest_and_counts_them():
    bus = Bus()
    stuck = bus.subscribe("stuck", maxsize=8)
    for i in range(100):
        bus.publish(line(i))
    assert stuck.dropped == 92
    assert [e.index for e in stuck.drain()] == list(range(92, 100))
    assert bus.drops() == {"stuck": 92}


def test_type_filter_and_independent_subscribers():
    bus = Bus()
    only = bus.subscribe("only", 4, types=[Rollover])
    everything = bus.subscribe("all", 100)
    bus.publish(line(0))
    bus.publish(Rollover(reason="silence", steps=3, total_steps=3, session=1))
    bus.publish(UserSpeechStarted(probability=0.9))
    assert [type(e) for e in only.drain()] == [Rollover]
    assert len(everything.drain()) == 3


def test_thread_consumer_is_woken():
    bus = Bus()
    sub = bus.subscribe("t", 16)
    sub.use_thread_wakeup()
    got = []
    th = threading.Thread(target=lambda: got.append(sub.wait(2.0)))
    th.start()
    bus.publish(line(7))
    th.join(3)
    assert got and got[0].index == 7


async def test_asyncio_consumers_on_one_loop_get_events_from_another_thread():
    bus = Bus()
    a = bus.subscribe_async("a", 16)
    b = bus.subscribe_async("b", 16, types=[SceneLine])
    threading.Thread(target=lambda: [bus.publish(line(i)) for i in range(3)]).start()
    got_a = [await asyncio.wait_for(a.get(), 2) for _ in range(3)]
    got_b = [await asyncio.wait_for(b.get(), 2) for _ in range(3)]
    assert [e.index for e in got_a] == [0, 1, 2] == [e.index for e in got_b]
    bus.unsubscribe(a)
    bus.unsubscribe(b)
    assert bus.drops() == {}


def test_records_keep_their_documented_shape():
    assert Rollover(
        index=4, t=1.5, reason="budget", steps=9, total_steps=9, session=1
    ).to_dict() == {
        "kind": "rollover",
        "index": 4,
        "t": 1.5,
        "reason": "budget",
        "steps": 9,
        "total_steps": 9,
        "session": 1,
    }
    assert StateChanged(index=2, t=0.25, src="idle", dst="speaking", trigger="x").to_dict() == {
        "kind": "state",
        "index": 2,
        "t": 0.25,
        "from": "idle",
        "to": "speaking",
        "trigger": "x",
    }
    frame = FrameEvent(
        index=1,
        t=0.08,
        mouth=0.5,
        rms_db=-30.0,
        text=" hi",
        model_ms=1.0,
        overhead_ms=0.1,
        user_speaking=True,
    ).to_dict()
    assert frame["kind"] == "frame" and frame["text"] == " hi" and "pcm" not in frame
