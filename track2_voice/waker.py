"""Waking an asyncio loop from a real-time thread without a system call on that thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

RELAY_IDLE_S = 0.5  # an idle relay thread checks for shutdown this often


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
