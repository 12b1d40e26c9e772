"""The hub never blocks the producer: drop-oldest, counted per subscriber."""

from __future__ import annotations

import asyncio
import threading

from track2_voice.events import EventHub, VoiceEvent


def test_a_subscriber_that_never_reads_loses_the_oldest_and_counts_them():
    hub = EventHub()
    stuck = hub.subscribe("stuck", maxsize=8)
    for i in range(100):
        hub.publish(VoiceEvent("x", i))
    assert stuck.dropped == 92
    assert [e.index for e in stuck.drain()] == list(range(92, 100))


def test_kind_filter_and_independent_subscribers():
    hub = EventHub()
    only = hub.subscribe("only", 4, kinds={"rollover"})
    everything = hub.subscribe("all", 100)
    for k in ("frame_like", "rollover", "other"):
        hub.publish(VoiceEvent(k))
    assert [e.kind for e in only.drain()] == ["rollover"]
    assert len(everything.drain()) == 3


def test_thread_consumer_is_woken():
    hub = EventHub()
    sub = hub.subscribe("t", 16)
    sub.use_thread_wakeup()
    got = []
    th = threading.Thread(target=lambda: got.append(sub.wait(2.0)))
    th.start()
    hub.publish(VoiceEvent("hello"))
    th.join(3)
    assert got and got[0].kind == "hello"


async def test_asyncio_consumer_gets_events_from_another_thread():
    hub = EventHub()
    sub = hub.subscribe("a", 16)
    sub.use_asyncio_wakeup(asyncio.get_running_loop())
    threading.Thread(target=lambda: [hub.publish(VoiceEvent("e", i)) for i in range(3)]).start()
    got = [await asyncio.wait_for(sub.get(), 2) for _ in range(3)]
    assert [e.index for e in got] == [0, 1, 2]
