"""The one bounded queue of the project: drop-oldest, drops counted, the producer never waits.

Why one class: the bus's subscriptions, every socket's outgoing mailbox (the face, the phone, the
telephone bridge, the expression stream) and the model server's per-session audio queue all
need the same thing: a producer on a real-time clock (the fast loop, the batch engine) hands an
item over without waiting, and a consumer that falls behind loses the oldest items, counted, so
it always gets the newest. The wake-up differs (a thread, an asyncio loop); the queue does not.

Thread-safe for one producer and one consumer: ``deque.append`` and ``popleft`` are atomic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldest(Generic[T]):
    """A bounded FIFO: ``put`` never blocks; when full, the oldest item goes and ``dropped``
    counts it (and ``on_drop``, if given, is called: a counter kept elsewhere)."""

    __slots__ = ("_items", "dropped", "on_drop")

    def __init__(self, maxlen: int, on_drop: Callable[[], None] | None = None) -> None:
        if maxlen < 1:
            raise ValueError(f"a drop-oldest queue holds at least 1 item, got {maxlen}")
        self._items: deque[T] = deque(maxlen=maxlen)
        self.dropped = 0
        self.on_drop = on_drop

    @property
    def maxlen(self) -> int:
        return self._items.maxlen or 0

    def put(self, item: T) -> None:
        items = self._items
        if len(items) == items.maxlen:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop()
        items.append(item)

    def get_nowait(self) -> T | None:
        """The oldest item, or None when empty."""
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def drain(self) -> list[T]:
        """Everything queued, oldest first; the queue is empty after."""
        out = []
        while True:
            try:
                out.append(self._items.popleft())
            except IndexError:
                return out

    def __len__(self) -> int:
        return len(self._items)
