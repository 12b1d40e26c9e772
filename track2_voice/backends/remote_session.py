"""A remote session's life, apart from what it carries: kept up by reconnecting with capped
exponential backoff (only the first failure after a session is announced), and a one-line
reason for each end. The frames themselves are :mod:`track2_voice.backends.remote`'s."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from track2_voice.backends.moshi_protocol import RemoteError

# one attempt: (why it ended, whether a session ran)
Attempt = Callable[[], Awaitable[tuple[str, bool]]]


class ServerSilent(RemoteError):
    """The server stopped answering without closing the connection."""


def describe_end(exc: BaseException | None, place: str) -> str:
    """A one-line reason for the end of a session."""
    from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

    if exc is None:
        return f"{place} ended the session"
    if isinstance(exc, ConnectionClosedOK):
        return f"{place} closed the session"
    if isinstance(exc, ConnectionClosedError):
        return f"connection to {place} lost ({exc})"
    if isinstance(exc, RemoteError):
        return str(exc)
    return f"session with {place} failed: {exc!r}"


async def keep_connected(
    attempt: Attempt,
    stop: asyncio.Event,
    backoff_base_s: float,
    backoff_cap_s: float,
    ended: Callable[[str], None],
    went_down: Callable[[str, float], None],
    log: logging.Logger,
) -> None:
    """Run ``attempt`` until ``stop``: after each end ``ended(reason)``; then wait
    ``min(cap, base * 2**failures)`` (failures count from the last session that ran).
    ``went_down(reason, delay)`` once per outage, so a dead server is one event, not one
    per retry; the retries after it are logged quietly."""
    failures = 0
    was_up = True  # so that the very first failure is announced
    while not stop.is_set():
        reason, ran = await attempt()
        if ran:
            failures = 0
            was_up = True
        ended(reason)
        if stop.is_set():
            break
        delay = min(backoff_cap_s, backoff_base_s * (2**failures))
        failures += 1
        if was_up:
            went_down(reason, delay)
            was_up = False
        else:
            log.info("remote: %s; next try in %.2f s", reason, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except (TimeoutError, asyncio.TimeoutError):
            pass
