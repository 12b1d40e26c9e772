"""A robot's duties (docs/slow_loop.md, "The robot's duties"), kept once for every robot: the
example robot, the bodies' link and the ROS 2 bridge.

* Delivery is at-least-once: the creature sends a call again after every reconnect until it
  hears an outcome, so a robot dedupes by call id, durably (:class:`TaskLog`: SQLite, written
  before anything moves), and answers a repeat with the status it already knows
  (:func:`repeat_answer`): a call taken on before the robot's own restart is reported failed,
  never done twice, since only the real world knows whether the motion finished.
* A ``cancel`` for a call with no live task is answered from the log (:func:`cancel_answer`).
* The link comes back: :func:`keep_connected` reconnects with doubling backoff until stopped.
* A frame the robot does not understand is logged and skipped, never the end of the link
  (:func:`messages_from`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from orchestrator.bodies.protocol import (
    TERMINAL,
    CreatureMsg,
    ProtocolError,
    Status,
    parse_from_creature,
)

RECONNECT_S = 0.5  # first reconnect delay, doubled up to RECONNECT_MAX_S
RECONNECT_MAX_S = 5.0
Known = tuple[str, str | None]  # (status, reason) as the task log holds it


class TaskLog:
    """The call ids a robot has taken on, in SQLite, written (and committed) before anything
    moves, updated as the call goes. ``:memory:`` forgets on exit (tests of a single run)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        if str(path) != ":memory:":  # a state file: the owner's only
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            Path(path).touch(mode=0o600, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
            "reason TEXT, updated REAL NOT NULL)"
        )

    def get(self, call_id: str) -> Known | None:
        return self.db.execute(
            "SELECT status, reason FROM tasks WHERE id = ?", (call_id,)
        ).fetchone()

    def put(self, call_id: str, status: Status | str, reason: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO tasks VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "status = excluded.status, reason = excluded.reason, updated = excluded.updated",
            (call_id, getattr(status, "value", status), reason, time.time()),
        )

    def close(self) -> None:
        self.db.close()


def ended(status: str) -> bool:
    return status in {s.value for s in TERMINAL}


def repeat_answer(known: Known, live: bool, interrupted: str) -> Known:
    """What to say of a call sent again: where it stands; one taken on but not live in this
    process was cut by a restart (``interrupted``): it may have half-moved, it is not repeated."""
    status, reason = known
    if not ended(status) and not live:
        return Status.FAILED.value, interrupted
    return status, reason


def cancel_answer(known: Known | None, interrupted: str) -> Known:
    """What to say of a cancel for a call with no live task here."""
    if known is None:
        return Status.CANCELLED.value, "cancelled before it started"
    if not ended(known[0]):  # taken on before a restart of this robot
        return Status.CANCELLED.value, interrupted
    return known


async def messages_from(
    ws: Any, log: logging.Logger, level: int = logging.WARNING
) -> AsyncIterator[CreatureMsg]:
    """The creature's messages on ``ws``, typed, until the socket closes; a frame that does not
    parse is logged at ``level`` and skipped."""
    async for raw in ws:
        try:
            yield parse_from_creature(raw)
        except ProtocolError as e:
            log.log(level, "not understood from the creature: %s", e)


async def keep_connected(
    url: str,
    serve: Callable[[Any], Awaitable[None]],
    stop: asyncio.Event,
    log: logging.Logger,
    max_size: int | None = 2**20,
) -> None:
    """Connect to ``url``, ``serve`` the socket, and reconnect with doubling backoff, until
    ``stop`` is set (which also ends a serve under way). What ``serve`` raises that is not a
    lost connection goes up."""
    delay = RECONNECT_S
    while not stop.is_set():
        try:
            async with connect(url, open_timeout=3, max_size=max_size) as ws:
                delay = RECONNECT_S
                stopper = asyncio.create_task(stop.wait())
                server = asyncio.create_task(serve(ws))
                await asyncio.wait({stopper, server}, return_when=asyncio.FIRST_COMPLETED)
                for t in (stopper, server):
                    t.cancel()
                if server.done() and not server.cancelled() and server.exception():
                    raise server.exception()  # type: ignore[misc]
        except (OSError, ConnectionClosed, InvalidStatus, asyncio.TimeoutError) as e:
            log.info("%s: not connected (%s); retrying in %.1fs", urlsplit(url).path, e, delay)
        if stop.is_set():
            break
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except asyncio.TimeoutError:
            pass
        delay = min(delay * 2, RECONNECT_MAX_S)
