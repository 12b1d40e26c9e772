"""Handing work from the fast loop to a worker thread without ever waiting for it.

The fast loop appends to a bounded ``deque`` (when full, the oldest item falls out: the
newest audio matters most) and wakes the worker only if the condition's lock is free at that
instant; a worker that missed the wake-up finds the item at its next short wait.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TypeVar

T = TypeVar("T")


def hand_over(q: deque[T], item: T, cond: threading.Condition) -> bool:
    """Queue ``item`` for the worker that waits on ``cond``; True if the oldest was dropped."""
    dropped = len(q) == q.maxlen
    q.append(item)
    wake(cond)
    return dropped


def wake(cond: threading.Condition) -> None:
    """Notify the worker waiting on ``cond`` if its lock is free this instant, never waiting
    for it: a worker busy holding the lock finds the work at its next short wait."""
    if cond.acquire(blocking=False):
        try:
            cond.notify()
        finally:
            cond.release()
