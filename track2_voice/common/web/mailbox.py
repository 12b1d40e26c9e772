"""The outgoing side of a socket: the project's drop-oldest queue with an asyncio wake-up.

Each connection has one ``Mailbox`` drained by its own sender task, so a slow or dead peer only
ever delays itself; a send that takes longer than the endpoint's stall timeout ends that peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from track2_voice.common.drop_oldest import DropOldest

T = TypeVar("T")


async def bounded(aw: Awaitable[T], timeout_s: float) -> T:
    """``await aw`` with a time limit. ``asyncio.timeout`` (3.11+) adds no task per send, which
    matters when every 80 ms frame goes out to many sockets; ``wait_for`` creates one."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(timeout_s):
            return await aw
    return await asyncio.wait_for(aw, timeout_s)


class Mailbox(DropOldest[T]):
    """A ``DropOldest`` on one asyncio loop: ``offer`` wakes the sender; ``sent`` counts what
    went out. ``maxlen=1`` is latest-wins (the face)."""

    __slots__ = ("ready", "sent")

    def __init__(self, maxlen: int, on_drop: Callable[[], None] | None = None) -> None:
        super().__init__(maxlen, on_drop)
        self.ready = asyncio.Event()
        self.sent = 0

    def offer(self, item: T) -> None:
        self.put(item)
        self.ready.set()

    async def wait(self) -> None:
        """Until something was offered since the last wait (it may be gone again: a clear)."""
        await self.ready.wait()
        self.ready.clear()

    async def arrivals(self) -> AsyncIterator[T]:
        """Each item as it can be taken, oldest first, until cancelled; an item stays queued
        (and may be dropped for a newer one) until the consumer asks for it."""
        while True:
            await self.wait()
            while self._items:
                yield self._items.popleft()

    async def send_all(self, send: Callable[[T], Awaitable[None]], timeout_s: float) -> None:
        """Send what arrives until cancelled; raises ``asyncio.TimeoutError`` when one send
        takes longer than ``timeout_s`` (the peer stalled)."""
        while True:
            await self.wait()
            while self._items:
                await bounded(send(self._items.popleft()), timeout_s)
                self.sent += 1


class ThreadFedMailbox(Mailbox[T]):
    """A ``Mailbox`` whose producer runs on another thread (the model server's batch engine):
    ``offer_threadsafe`` hands each item to the mailbox's loop without waiting. After ``close``,
    or once that loop is gone (the server stops), offers are ignored."""

    __slots__ = ("loop", "closed")

    def __init__(
        self,
        maxlen: int,
        loop: asyncio.AbstractEventLoop,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(maxlen, on_drop)
        self.loop = loop
        self.closed = False

    def offer_threadsafe(self, item: T) -> None:
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self.offer, item)
        except RuntimeError:  # the loop is closed: the server is stopping
            self.closed = True

    def close(self) -> None:
        self.closed = True
