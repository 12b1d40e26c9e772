"""The expression stream: the creature's look and voice state, live, for bodies.

A body that shows the creature (a Reachy Mini's head and antennas, a screen, lights) needs what
the phone's face gets: the emotion and its valence/arousal point, whether the creature speaks
and how open its mouth is, whether the user speaks (listening nods), and where the user's face
is (gaze). Calls are promises and go through the outbox; this is the opposite: a state that is
only worth its newest value. So each subscriber has a one-slot mailbox (latest wins), sends are
paced to at most ``MAX_HZ`` per subscriber, nothing is queued or stored, and a subscriber that
stops reading only ever loses its own socket.

``WS /expression?token=TOKEN[&hz=N]`` (or ``Authorization: Bearer TOKEN``), on the robot
channel's port with the robot token. Server -> body: ``{"type": "expression", ...}`` (see
:class:`Expression`); body -> server: nothing is needed (``{"type": "ping"}`` gets a pong).
docs/bodies.md has the message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from track2_voice.common.limits import RefusalLog
from track2_voice.common.web import CloseCode, Mailbox, OriginGate, bearer, bounded, token_ok

log = logging.getLogger(__name__)
PATH = "/expression"
MAX_HZ = 25.0  # the most a subscriber is sent; a subscriber may ask for fewer with ?hz=N
MAX_CLIENTS = 8
MAX_INBOUND_BYTES = 1024  # a body sends at most a ping
GAZE_STALE_S = 1.0  # a gaze not renewed for this long is dropped (the page sends 10 a second)
STALL_TIMEOUT_S = 2.0  # one send taking longer: the subscriber is not reading, it goes


@dataclass(frozen=True)
class Gaze:
    """Where the user's face is as the creature sees it: x, y in -1..1 (the creature's right
    and down positive), from the phone camera's face tracking."""

    x: float
    y: float


@dataclass(frozen=True)
class Expression:
    """One expression message: the face contract plus what a body needs to move with it."""

    t: float  # the frame's time stamp (the creature's monotonic clock)
    emotion: str
    valence: float  # -1..1
    arousal: float  # 0..1
    speaking: bool  # the creature speaks
    mouth: float  # 0..1, the frame's mouth opening (speech energy)
    listening: bool  # the user speaks
    state: str | None = None  # idle, listening, speaking, acting, disconnected
    visemes: dict[str, float] | None = None
    gaze: Gaze | None = None

    @classmethod
    def from_face_state(cls, s: dict[str, Any], gaze: Gaze | None = None) -> Expression:
        return cls(
            t=float(s.get("t", 0.0)),
            emotion=str(s.get("emotion", "neutral")),
            valence=float(s.get("valence", 0.0)),
            arousal=float(s.get("arousal", 0.0)),
            speaking=bool(s.get("speaking", False)),
            mouth=float(s.get("mouth", 0.0)),
            listening=bool(s.get("listening", False)),
            state=s.get("state"),
            visemes=s.get("visemes"),
            gaze=gaze,
        )

    def to_json(self) -> str:
        body = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps({"type": "expression", **body}, separators=(",", ":"))


class _Subscriber:
    __slots__ = ("ws", "out", "period_s", "task")

    def __init__(self, ws: WebSocket, hz: float) -> None:
        self.ws = ws
        self.out = Mailbox(1)
        self.period_s = 1.0 / hz
        self.task: asyncio.Task | None = None


class ExpressionStream:
    """``publish(face_state)`` on the I/O loop after each batch of events; ``app`` serves the
    subscribers. Costs nothing but a length check while nobody subscribes."""

    def __init__(
        self,
        token: str,
        allowed_origins: list[str] | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.token = token
        self.refusals = refusals or RefusalLog()
        self.subscribers: set[_Subscriber] = set()
        self.gaze: Gaze | None = None
        self.gaze_at = 0.0
        self.published = 0
        self.sent = 0
        self.overwritten = 0
        self.app = OriginGate(
            Starlette(routes=[WebSocketRoute(PATH, self._ws)]),
            list(allowed_origins or []),
            same_origin=False,
            on_refused=self.refusals.refused,
        )

    def publish(self, state: dict[str, Any]) -> None:
        """Hand the newest face state to every subscriber; never waits."""
        if not self.subscribers:
            return
        gaze = self.gaze if time.monotonic() - self.gaze_at < GAZE_STALE_S else None
        text = Expression.from_face_state(state, gaze).to_json()
        self.published += 1
        for sub in self.subscribers:
            sub.out.offer(text)

    def set_gaze(self, gaze: Gaze | None) -> None:
        """Where the user's face is (None: not seen); it counts for ``GAZE_STALE_S``, so a
        phone that goes away does not leave the robot staring at where the user was."""
        self.gaze = gaze
        self.gaze_at = time.monotonic()

    def stats(self) -> dict[str, int]:
        subs = list(self.subscribers)
        return {
            "subscribers": len(subs),
            "published": self.published,
            "sent": self.sent + sum(s.out.sent for s in subs),
            "overwritten": self.overwritten + sum(s.out.dropped for s in subs),
        }

    def in_front_of(self, app: Any) -> Any:
        """An ASGI app that serves ``PATH`` and hands every other request to ``app`` (the robot
        channel), so both share one port and one token."""

        async def route(scope: Any, receive: Any, send: Any) -> None:
            target = self.app if scope.get("path") == PATH else app
            await target(scope, receive, send)

        return route

    async def _refuse(self, ws: WebSocket, code: CloseCode, why: str) -> None:
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        self.refusals.refused(f"expression stream: {why}", peer)
        await ws.send_text(json.dumps({"type": "error", "error": why}))
        await ws.close(code=code, reason=why[:120])

    async def _ws(self, ws: WebSocket) -> None:
        given = ws.query_params.get("token") or bearer(ws.headers)
        await ws.accept()
        if not token_ok(given, self.token):
            await self._refuse(ws, CloseCode.UNAUTHORIZED, "missing or wrong token")
            return
        if len(self.subscribers) >= MAX_CLIENTS:
            await self._refuse(ws, CloseCode.BUSY, f"at most {MAX_CLIENTS} subscribers")
            return
        try:
            hz = float(ws.query_params.get("hz") or MAX_HZ)
        except ValueError:
            hz = -1.0
        if not 0.0 < hz <= MAX_HZ:
            await self._refuse(ws, CloseCode.BAD_STREAM, f"hz: expected a number in (0, {MAX_HZ}]")
            return
        sub = _Subscriber(ws, hz)
        self.subscribers.add(sub)
        sub.task = asyncio.create_task(self._sender(sub))
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                text = msg.get("text") or ""
                if len(text) + len(msg.get("bytes") or b"") > MAX_INBOUND_BYTES:
                    self.refusals.refused(f"{PATH}: message over {MAX_INBOUND_BYTES} B")
                    await ws.close(code=CloseCode.TOO_BIG, reason="message too big")
                    break
                if '"ping"' in text:
                    sub.out.offer(json.dumps({"type": "pong"}))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._drop(sub)

    def _drop(self, sub: _Subscriber, cancel: bool = True) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            self.sent += sub.out.sent
            self.overwritten += sub.out.dropped
        if cancel and sub.task is not None:
            sub.task.cancel()

    async def _sender(self, sub: _Subscriber) -> None:
        """Latest wins: whatever arrives while this waits out the pacing replaces what was
        there, so a subscriber always gets the newest state and never more than its rate."""
        last = 0.0
        try:
            while True:
                await sub.out.ready.wait()
                wait = last + sub.period_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                sub.out.ready.clear()
                text = sub.out.get_nowait()
                if text is None:
                    continue
                last = time.monotonic()
                await bounded(sub.ws.send_text(text), STALL_TIMEOUT_S)
                sub.out.sent += 1
        except asyncio.TimeoutError:
            log.warning("expression subscriber stalled for %.1f s: closing it", STALL_TIMEOUT_S)
            self._drop(sub, cancel=False)
            try:
                await asyncio.wait_for(sub.ws.close(code=CloseCode.STALLED), 1.0)
            except Exception:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a broken socket ends this subscriber only
            log.debug("expression send failed: %s", e)
            self._drop(sub, cancel=False)
