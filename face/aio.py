"""Small asyncio helpers shared by the face's WebSocket senders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(aw: Awaitable[T], timeout_s: float) -> T:
    """``await aw`` with a time limit. ``asyncio.timeout`` (3.11+) adds no task per send, which
    matters when every 80 ms frame goes out to many sockets; ``wait_for`` creates one."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(timeout_s):
            return await aw
    return await asyncio.wait_for(aw, timeout_s)
