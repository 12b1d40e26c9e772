"""The bus: typed events from the fast loop and the brain, fanned out to bounded mailboxes.

Publishing appends to a bounded drop-oldest queue per subscriber (the project's one,
``track2_voice.common.drop_oldest``): when a subscriber falls behind, its oldest event is
dropped and counted. The producer never waits on a consumer, which is what
lets the fast loop publish every 80 ms frame from its own thread. A subscription may accept
only some event types; consumers dispatch on the type, never on a string.

Consumers either wait on a thread of their own (:class:`SubscriberThread`: the JSONL record),
or are asyncio tasks on the runtime's one I/O loop (:meth:`Bus.subscribe_async`); those are
woken through one :class:`~track2_voice.waker.LoopWaker` per loop, so ``publish`` makes no
system call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from functools import partial

from track2_voice.common.drop_oldest import DropOldest
from track2_voice.events import Event
from track2_voice.handoff import wake
from track2_voice.waker import LoopWaker

CONSUMER_WAIT_S = 0.1  # an idle consumer thread checks for stop this often
EventTypes = tuple[type[Event], ...]


class Subscription(DropOldest[Event]):
    """A bounded drop-oldest mailbox (``track2_voice.common.drop_oldest``) of one subscriber,
    taking only ``types`` if given. Thread-safe for one producer and one consumer."""

    def __init__(self, name: str, maxsize: int, types: EventTypes | None = None) -> None:
        if maxsize < 1:
            raise ValueError("subscription maxsize must be >= 1")
        super().__init__(maxsize)
        self.name = name
        self.types = types
        self.delivered = 0
        self._waker: Callable[[], None] | None = None
        self._cond = threading.Condition()
        self._async_event: asyncio.Event | None = None

    @property
    def maxsize(self) -> int:
        return self.maxlen

    def put(self, event: Event) -> None:
        if self.types is not None and not isinstance(event, self.types):
            return
        # DropOldest.put's rule, inlined: this runs for every subscriber of every event the
        # fast loop publishes, and the call would double its cost (~150 -> ~250 ns)
        items = self._items
        if len(items) == items.maxlen:
            self.dropped += 1
        items.append(event)
        self.delivered += 1
        waker = self._waker
        if waker is not None:
            waker()

    # -- a consumer on a thread -------------------------------------------------------------
    def use_thread_wakeup(self) -> None:
        self._waker = partial(wake, self._cond)

    def wait(self, timeout: float) -> Event | None:
        """Block the *consumer* thread until an event arrives (or timeout)."""
        item = self.get_nowait()
        if item is not None:
            return item
        with self._cond:
            self._cond.wait(timeout)
        return self.get_nowait()

    # -- a consumer on an asyncio loop ----------------------------------------------------------
    async def get(self) -> Event:
        """Await the next event (a subscription made by :meth:`Bus.subscribe_async`)."""
        assert self._async_event is not None, "subscribe with Bus.subscribe_async"
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            self._async_event.clear()
            item = self.get_nowait()
            if item is not None:
                return item
            await self._async_event.wait()

    async def get_batch(self) -> list[Event]:
        """Await at least one event; return everything queued (oldest first)."""
        first = await self.get()
        return [first, *self.drain()]


class _LoopWakeups:
    """One relay thread per asyncio loop: ``wake()`` from any thread sets the event of every
    subscription on that loop that has something queued."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.subs: list[Subscription] = []
        self.waker = LoopWaker(loop, self._on_loop, "bus-wake")

    def _on_loop(self) -> None:
        for sub in self.subs:
            if sub._items and sub._async_event is not None:
                sub._async_event.set()


class Bus:
    """Fan-out from any producer to any number of bounded subscriptions."""

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self._wakeups: dict[asyncio.AbstractEventLoop, _LoopWakeups] = {}

    def subscribe(
        self, name: str, maxsize: int = 256, types: Iterable[type[Event]] | None = None
    ) -> Subscription:
        sub = Subscription(name, maxsize, tuple(types) if types else None)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def subscribe_async(
        self, name: str, maxsize: int = 256, types: Iterable[type[Event]] | None = None
    ) -> Subscription:
        """A subscription awaited on the running asyncio loop (``await sub.get()``)."""
        loop = asyncio.get_running_loop()
        sub = Subscription(name, maxsize, tuple(types) if types else None)
        sub._async_event = asyncio.Event()
        with self._lock:
            wakeups = self._wakeups.get(loop)
            if wakeups is None:
                wakeups = self._wakeups[loop] = _LoopWakeups(loop)
            wakeups.subs = [*wakeups.subs, sub]
            sub._waker = wakeups.waker.wake
            self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            for loop, wakeups in list(self._wakeups.items()):
                if sub in wakeups.subs:
                    wakeups.subs = [s for s in wakeups.subs if s is not sub]
                    if not wakeups.subs:
                        wakeups.waker.close()
                        del self._wakeups[loop]

    def publish(self, event: Event) -> None:
        for sub in self._subs:  # a tuple snapshot: subscribe/unsubscribe never block this
            sub.put(event)

    def drops(self) -> dict[str, int]:
        return {s.name: s.dropped for s in self._subs}


class SubscriberThread:
    """A consumer of one bounded subscription, on a thread of its own.

    The producers only publish; this thread waits for events and hands them to ``consume`` in
    batches (everything queued since the last wake-up). Subclasses set their own fields *before*
    calling ``__init__``, which starts the thread.
    """

    def __init__(
        self,
        bus: Bus,
        name: str,
        maxsize: int,
        types: Iterable[type[Event]] | None = None,
        wait_s: float = CONSUMER_WAIT_S,
    ) -> None:
        self.bus = bus
        self._sub = bus.subscribe(name, maxsize, types)
        self._sub.use_thread_wakeup()
        self._wait_s = wait_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def consume(self, events: list[Event]) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        """Called after every wake-up, events or not (at least every ``wait_s``)."""

    def _run(self) -> None:
        while not self._stopping.is_set():
            ev = self._sub.wait(self._wait_s)
            if ev is not None:
                self.consume([ev, *self._sub.drain()])
            self.tick()

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    def stop(self, drain: bool = False) -> None:
        """Stop the thread; with ``drain``, consume what is still queued first."""
        self._stopping.set()
        self._thread.join()
        self.bus.unsubscribe(self._sub)
        if drain:
            rest = self._sub.drain()
            if rest:
                self.consume(rest)
