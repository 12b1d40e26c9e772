"""The project's one bounded queue (``track2_voice.common.drop_oldest``) and the socket mailboxes
built on it: the producer never waits, the oldest items go and are counted, a consumer on an
asyncio loop is woken, and a producer on another thread (the model server's engine) hands over
without waiting and stops once the mailbox is closed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from track2_voice.common.drop_oldest import DropOldest
from track2_voice.common.web import Mailbox, ThreadFedMailbox


def test_a_full_queue_drops_its_oldest_and_counts_each_drop() -> None:
    counted: list[int] = []
    q: DropOldest[int] = DropOldest(3, on_drop=lambda: counted.append(1))
    for i in range(5):
        q.put(i)
    assert (len(q), q.dropped, len(counted)) == (3, 2, 2)
    assert q.get_nowait() == 2
    assert q.drain() == [3, 4]
    assert q.get_nowait() is None and len(q) == 0


def test_a_queue_holds_at_least_one_item() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DropOldest(0)


def test_a_mailbox_wakes_its_sender_and_latest_wins_with_one_slot() -> None:
    async def run() -> tuple[list[str], int, int]:
        box: Mailbox[str] = Mailbox(1)
        sent: list[str] = []

        async def send(text: str) -> None:
            sent.append(text)

        for text in ("old", "older", "newest"):
            box.offer(text)
        task = asyncio.create_task(box.send_all(send, 1.0))
        while box.sent < 1:
            await asyncio.sleep(0.001)
        task.cancel()
        return sent, box.sent, box.dropped

    assert asyncio.run(run()) == (["newest"], 1, 2)


def test_arrivals_come_oldest_first_and_each_waits_in_the_queue_until_taken() -> None:
    async def run() -> tuple[list[int], int]:
        box: Mailbox[int] = Mailbox(2)
        got: list[int] = []
        for i in range(2):
            box.offer(i)
        arrivals = box.arrivals()
        got.append(await anext(arrivals))
        for i in (2, 3):  # while the consumer holds item 0: 1 is still queued, and goes
            box.offer(i)
        got.append(await anext(arrivals))
        got.append(await anext(arrivals))
        await arrivals.aclose()
        return got, box.dropped

    assert asyncio.run(run()) == ([0, 2, 3], 1)


def test_a_thread_hands_over_without_waiting_and_not_after_close() -> None:
    async def run() -> tuple[list[int], bool]:
        box: ThreadFedMailbox[int] = ThreadFedMailbox(8, asyncio.get_running_loop())
        producer = threading.Thread(target=lambda: [box.offer_threadsafe(i) for i in range(3)])
        producer.start()
        producer.join()
        got = [await anext(box.arrivals()) for _ in range(1)]
        while len(got) < 3:
            await asyncio.sleep(0.001)
            got += box.drain()
        box.close()
        threading.Thread(target=box.offer_threadsafe, args=(99,)).start()
        await asyncio.sleep(0.05)
        return got, len(box) == 0

    assert asyncio.run(run()) == ([0, 1, 2], True)


def test_a_thread_feeding_a_closed_loop_stops_offering() -> None:
    loop = asyncio.new_event_loop()
    box: ThreadFedMailbox[int] = ThreadFedMailbox(2, loop)
    loop.close()
    box.offer_threadsafe(1)  # the server stopped: no error reaches the engine's thread
    assert box.closed
