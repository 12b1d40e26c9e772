"""The creature's one I/O thread: an asyncio loop that hosts the brain, the robot channel,
the face server and the phone link. The fast loop keeps its own thread (it is paced by audio
and must never wait on this one); everything else that does I/O lives here, so no state is
shared between threads except through the bus.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0


class IoLoop:
    def __init__(self, name: str = "creature-io") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> IoLoop:
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"{self.name}: the I/O loop did not start")
        return self

    def _main(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()

    @property
    def running(self) -> bool:
        return self.loop is not None and self.loop.is_running()

    def run(self, coro: Awaitable[T], timeout: float = START_TIMEOUT_S) -> T:
        """Run a coroutine on the loop from another thread; wait (bounded) for its result."""
        assert self.loop is not None, "start() the I/O loop first"
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    def run_sync(self, fn: Callable[..., T], *args: Any, timeout: float = CALL_TIMEOUT_S) -> T:
        """``fn(*args)`` on the loop's thread (to read the brain's state from a test or CLI)."""

        async def run() -> T:
            return fn(*args)

        return self.run(run(), timeout)

    def stop(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT_S)
        self._thread = None
