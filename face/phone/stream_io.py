"""A Media Streams socket's plumbing: the next text frame (bounded in time, or given up when
its seat is shed), the ``start`` a new stream must send first, error replies and closing.

Every frame the parser cannot take before ``start`` closes the stream (4400); the bridge logs
why (``NoStart``) and the socket goes.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.websockets import WebSocket

from face.phone.stream_seats import Seat
from face.phone.twilio_protocol import ConnectedMsg, StartMsg, StreamMessageError, parse
from track2_voice.common.web import CloseCode

MAX_MESSAGES_BEFORE_START = 16
_SHED = object()
_TIMEOUT = object()


@dataclass(frozen=True)
class NoStart:
    """Why a stream ended before its ``start``: ``why`` for the refusal log (None: the peer
    left, nothing to refuse), ``error`` to answer first, then a close with ``code``."""

    why: str | None
    code: int | None = None
    reason: str = ""
    error: str | None = None
    malformed: bool = False


async def read_start(ws: WebSocket, seat: Seat, timeout_s: float) -> StartMsg | NoStart:
    """Read until ``start`` (``connected`` comes first), bounded in time and count; the seat
    may be taken back meanwhile (shed). A malformed message ends the stream."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_MESSAGES_BEFORE_START):
        text = await _next_text(ws, seat, deadline - time.monotonic())
        if text is _SHED:
            return NoStart(
                "shed for a newer stream", CloseCode.BUSY, "too many streams waiting for 'start'"
            )
        if text is _TIMEOUT:
            return NoStart("no 'start' in time", CloseCode.BAD_STREAM, "no 'start' message in time")
        if text is None:
            return NoStart(None)
        try:
            msg = parse(text)  # type: ignore[arg-type]
        except StreamMessageError as e:
            why = "malformed message before 'start'"
            return NoStart(why, CloseCode.BAD_STREAM, "malformed message", str(e), True)
        if isinstance(msg, StartMsg):
            return msg
        if not isinstance(msg, ConnectedMsg):
            await send_error(ws, f"expected 'start' first, got {type(msg).__name__}")
    return NoStart(None, CloseCode.BAD_STREAM, "no 'start' message")


async def _next_text(ws: WebSocket, seat: Seat, left_s: float) -> str | object | None:
    """The next text frame, None when the peer went away, ``_SHED`` when the seat was taken
    back, ``_TIMEOUT`` after ``left_s``."""
    recv = asyncio.ensure_future(receive_text(ws))
    shed = asyncio.ensure_future(seat.shed.wait())
    try:
        done, _ = await asyncio.wait(
            {recv, shed}, timeout=max(left_s, 0.001), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        shed.cancel()
        if not recv.done():
            recv.cancel()
    if recv in done:
        try:
            return recv.result()
        except Exception:  # the socket broke
            return None
    return _SHED if shed in done else _TIMEOUT


async def receive_text(ws: WebSocket) -> str | None:
    """The next text frame; None when the peer went away (binary frames are skipped)."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return None
        text = msg.get("text")
        if text is not None:
            return text
        if msg.get("bytes") is not None:
            await send_error(ws, "binary frames are not part of the protocol; send JSON text")


async def send_error(ws: WebSocket, text: str) -> None:
    try:
        await ws.send_text(json.dumps({"event": "error", "error": text}))
    except Exception:
        pass


async def close(ws: WebSocket, code: int, reason: str) -> None:
    try:
        await asyncio.wait_for(ws.close(code=code, reason=reason), 1.0)
    except Exception:
        pass


def peer_of(conn: Request | WebSocket) -> str:
    c = conn.client
    return f"{c.host}:{c.port}" if c else "a peer"
