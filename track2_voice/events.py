"""Events the fast loop publishes, and the bounded, never-blocking hub that carries them.

Publishing appends to a ``deque(maxlen=N)`` per subscriber: when a subscriber falls behind the
oldest event is dropped and counted. The fast loop never waits on a consumer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class FrameEvent:
    """Everything the loop knows about one frame. ``pcm`` (the creature's audio) is not logged."""

    index: int
    t: float
    mouth: float
    rms_db: float
    text: str | None
    model_ms: float
    overhead_ms: float
    missed: bool
    user_speaking: bool
    pcm: np.ndarray | None = field(default=None, repr=False)
    kind: str = "frame"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "frame",
            "index": self.index,
            "t": round(self.t, 6),
            "mouth": round(self.mouth, 4),
            "rms_db": round(self.rms_db, 2),
            "model_ms": round(self.model_ms, 3),
            "overhead_ms": round(self.overhead_ms, 3),
            "missed": self.missed,
            "user_speaking": self.user_speaking,
        }
        if self.text:
            d["text"] = self.text
        return d


@dataclass(slots=True)
class VoiceEvent:
    """A discrete happening: rollover, user speech started/ended, connection changes, errors..."""

    kind: str
    index: int = -1
    t: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "index": self.index, "t": round(self.t, 6), **self.data}


Event = FrameEvent | VoiceEvent
RELAY_IDLE_S = 0.5  # an idle relay thread checks for shutdown this often
CONSUMER_WAIT_S = 0.1  # an idle consumer thread checks for stop this often


class Subscription:
    """A bounded drop-oldest mailbox. Thread-safe for one producer and one consumer."""

    def __init__(self, name: str, maxsize: int, kinds: frozenset[str] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("subscription maxsize must be >= 1")
        self.name = name
        self.maxsize = maxsize
        self.kinds = kinds
        self.dropped = 0
        self.delivered = 0
        self._items: deque[Event] = deque(maxlen=maxsize)
        self._waker: Callable[[], None] | None = None
        self._cond = threading.Condition()
        self._closed = False

    def put(self, event: Event) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
            return
        if len(self._items) >= self.maxsize:
            self.dropped += 1
        self._items.append(event)
        self.delivered += 1
        waker = self._waker
        if waker is not None:
            waker()

    def get_nowait(self) -> Event | None:
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def drain(self) -> list[Event]:
        out = []
        while True:
            try:
                out.append(self._items.popleft())
            except IndexError:
                return out

    def __len__(self) -> int:
        return len(self._items)

    # -- waiting, for consumers only -------------------------------------------------
    def use_thread_wakeup(self) -> None:
        def wake() -> None:
            # notify without waiting for the lock if a consumer holds it
            if self._cond.acquire(blocking=False):
                try:
                    self._cond.notify()
                finally:
                    self._cond.release()

        self._waker = wake

    def wait(self, timeout: float) -> Event | None:
        """Block the *consumer* thread until an event arrives (or timeout)."""
        item = self.get_nowait()
        if item is not None:
            return item
        with self._cond:
            self._cond.wait(timeout)
        return self.get_nowait()

    def use_asyncio_wakeup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake an asyncio consumer through a :class:`LoopWaker` (no system call in ``put``)."""
        self._async_event = asyncio.Event()
        self._loop_waker = LoopWaker(loop, self._async_event.set, f"wake-{self.name}")
        self._waker = self._loop_waker.wake

    def close(self) -> None:
        """Stop the relay thread, if any (called by EventHub.unsubscribe)."""
        waker = getattr(self, "_loop_waker", None)
        if waker is not None:
            waker.close()

    async def get(self) -> Event:
        """Await the next event (asyncio consumers; call use_asyncio_wakeup first)."""
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            self._async_event.clear()
            item = self.get_nowait()
            if item is not None:
                return item
            await self._async_event.wait()


class LoopWaker:
    """Lets a real-time thread wake an asyncio loop without making a system call itself.

    ``loop.call_soon_threadsafe`` writes to the loop's self-pipe; from the fast loop that write
    hands the GIL to the woken thread and can stall the caller for a switch interval (~5 ms).
    ``wake()`` only sets a ``threading.Event``; a small relay thread makes the call.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[], Any], name: str
    ) -> None:
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._loop = loop
        self._callback = callback
        self.wake = self._pending.set
        self._thread = threading.Thread(target=self._relay, name=name, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while not self._stop.is_set():
            if not self._pending.wait(RELAY_IDLE_S):
                continue
            self._pending.clear()  # anything after this sets it again: no wake-up is lost
            try:
                self._loop.call_soon_threadsafe(self._callback)
            except RuntimeError:  # the loop closed: nobody is waiting any more
                return

    def close(self) -> None:
        self._stop.set()


class EventHub:
    """Fan-out from the fast loop to any number of bounded subscriptions."""

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()

    def subscribe(
        self, name: str, maxsize: int = 256, kinds: set[str] | None = None
    ) -> Subscription:
        sub = Subscription(name, maxsize, frozenset(kinds) if kinds else None)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
        sub.close()

    def publish(self, event: Event) -> None:
        for sub in self._subs:  # a tuple snapshot: subscribe/unsubscribe never block this
            sub.put(event)

    def drops(self) -> dict[str, int]:
        return {s.name: s.dropped for s in self._subs}


class SubscriberThread:
    """A consumer of one bounded subscription, on a thread of its own.

    The fast loop only publishes; this thread waits for events and hands them to ``consume`` in
    batches (everything queued since the last wake-up). Subclasses set their own fields *before*
    calling ``__init__``, which starts the thread.
    """

    def __init__(
        self,
        hub: EventHub,
        name: str,
        maxsize: int,
        kinds: set[str] | frozenset[str] | None = None,
        wait_s: float = CONSUMER_WAIT_S,
    ) -> None:
        self.hub = hub
        self._sub = hub.subscribe(name, maxsize, set(kinds) if kinds else None)
        self._sub.use_thread_wakeup()
        self._wait_s = wait_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def consume(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.is_set():
            ev = self._sub.wait(self._wait_s)
            if ev is not None:
                self.consume([ev, *self._sub.drain()])

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    def stop(self, drain: bool = False) -> None:
        """Stop the thread; with ``drain``, consume what is still queued first."""
        self._stopping.set()
        self._thread.join()
        self.hub.unsubscribe(self._sub)
        if drain:
            rest = self._sub.drain()
            if rest:
                self.consume(rest)
