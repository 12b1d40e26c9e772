"""A body's link to the creature: the robot channel (calls in, statuses out) and the expression
stream (the creature's live look), each on a WebSocket that reconnects with backoff.

It imports only the standard library, ``websockets`` and ``orchestrator.bodies``: it runs in a
body's own environment. It speaks the robot's side of the protocol (``bodies.protocol``) and
keeps the robot's duties (``bodies.duties``, docs/slow_loop.md) for every body program: dedupe
by call id, durably (SQLite, written before anything moves), statuses on the connection the
call came on, a repeat answered with the status already known, a ``cancel`` honoured at once
(the body halts first).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed

from orchestrator.bodies import protocol
from orchestrator.bodies.duties import (
    TaskLog,
    cancel_answer,
    keep_connected,
    messages_from,
    repeat_answer,
)
from orchestrator.bodies.protocol import Capability, Status

__all__ = ["Body", "Call", "Capability", "Expression", "Gaze", "Link", "TaskLog", "hello_message"]

log = logging.getLogger("body.link")
INTERRUPTED = "interrupted by a body restart: not repeated"
STOPPED = "the body was stopped mid-task"


def hello_message(body: str, capabilities: Iterable[Capability]) -> dict[str, Any]:
    """What a body declares when it connects: its kind and what it can do (docs/bodies.md;
    written by the protocol's one ``hello`` builder)."""
    return protocol.hello(body, capabilities)


@dataclass(frozen=True)
class Call:
    id: str
    action: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Gaze:
    x: float  # -1..1, the user's right on the phone's screen (the creature's left)
    y: float  # -1..1, down


@dataclass(frozen=True)
class Expression:
    """The creature's live look (``{"type": "expression", ...}`` on ``/expression``)."""

    t: float = 0.0
    emotion: str = "neutral"
    valence: float = 0.0
    arousal: float = 0.0
    speaking: bool = False
    mouth: float = 0.0
    listening: bool = False
    state: str | None = None
    gaze: Gaze | None = None

    @classmethod
    def from_message(cls, m: dict[str, Any]) -> Expression:
        g = m.get("gaze")
        return cls(
            t=float(m.get("t", 0.0)),
            emotion=str(m.get("emotion", "neutral")),
            valence=_clamp(float(m.get("valence", 0.0)), -1.0, 1.0),
            arousal=_clamp(float(m.get("arousal", 0.0)), -1.0, 1.0),
            speaking=bool(m.get("speaking", False)),
            mouth=_clamp(float(m.get("mouth", 0.0)), 0.0, 1.0),
            listening=bool(m.get("listening", False)),
            state=m.get("state"),
            gaze=Gaze(_clamp(float(g["x"]), -1, 1), _clamp(float(g["y"]), -1, 1))
            if isinstance(g, dict)
            else None,
        )


def _object(raw: str | bytes) -> dict[str, Any]:
    """An expression-stream message as a JSON object; anything else is logged and read as an
    empty one."""
    try:
        msg = json.loads(raw)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        log.warning("not a JSON object from the creature: %.80r", raw)
        return {}
    return msg


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


class Body(Protocol):
    """What a body program gives the link."""

    kind: str  # e.g. "reachy-mini"
    capabilities: list[Capability]

    async def perform(self, call: Call) -> None:
        """Do the call; raise to fail it (the message is the reason). Cancelled on ``cancel``."""

    def halt(self) -> None:
        """Stop moving now (a cancel: a person's stop always wins)."""

    def express(self, expression: Expression) -> None:
        """The creature's newest look; called from the link's loop, must not block."""


def sibling_url(robot_url: str, path: str) -> str:
    """``ws://host:port/robot`` -> ``ws://host:port/expression`` (same server, same token)."""
    u = urlsplit(robot_url)
    return urlunsplit((u.scheme, u.netloc, path, "", ""))


@dataclass
class LinkStats:
    expressions: int = 0  # expression messages received
    first_expression: float | None = None
    last_expression: float | None = None
    calls: int = 0
    duplicates: int = 0

    def expression_hz(self) -> float:
        if self.expressions < 2 or self.first_expression is None or self.last_expression is None:
            return 0.0
        span = self.last_expression - self.first_expression
        return (self.expressions - 1) / span if span > 0 else 0.0


class Link:
    """Serve ``body`` for the creature at ``url`` (the robot channel) until ``stop()``."""

    def __init__(
        self, url: str, token: str, body: Body, name: str, db: str | Path = ":memory:"
    ) -> None:
        self.url = url
        self.token = token
        self.body = body
        self.name = name
        self.log = TaskLog(db)
        self.stats = LinkStats()
        self.connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._ws: Any = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._unsent: list[dict[str, Any]] = []
        self._stopping = False

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        calls = f"{self.url}?token={quote(self.token)}&robot={quote(self.name)}"
        looks = f"{sibling_url(self.url, '/expression')}?token={quote(self.token)}"
        await asyncio.gather(
            keep_connected(calls, self._serve_calls, self._stop, log, max_size=2**16),
            keep_connected(looks, self._serve_looks, self._stop, log, max_size=2**16),
        )
        self._stopping = True  # what is still running failed: the body itself stops
        live = [t for t in self._tasks.values() if not t.done()]
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)

    async def _serve_looks(self, ws: Any) -> None:
        async for raw in ws:
            msg = _object(raw)
            if msg.get("type") != "expression":
                if msg.get("type") == "error":
                    log.warning("expression stream: %s", msg.get("error"))
                continue
            now = time.monotonic()
            s = self.stats
            s.expressions += 1
            s.first_expression = s.first_expression or now
            s.last_expression = now
            try:
                self.body.express(Expression.from_message(msg))
            except (TypeError, ValueError, KeyError) as e:
                log.warning("bad expression message: %s", e)

    async def _serve_calls(self, ws: Any) -> None:
        self._ws = ws
        await ws.send(json.dumps(hello_message(self.body.kind, self.body.capabilities)))
        self.connected.set()
        try:
            async for msg in messages_from(ws, log):
                await self._on_message(msg)
        finally:
            self.connected.clear()

    async def _status(self, call_id: str, status: str, reason: str | None = None) -> None:
        msg = protocol.status(call_id, status, reason)
        log.info("%s -> %s%s", call_id, status, f" ({reason})" if reason else "")
        self.log.put(call_id, status, reason)
        try:
            await self._ws.send(json.dumps(msg))
        except ConnectionClosed:
            self._unsent.append(msg)  # said again after the reconnect

    async def _run(self, call: Call) -> None:
        await self._status(call.id, Status.ACCEPTED.value)
        await self._status(call.id, Status.RUNNING.value)
        try:
            await self.body.perform(call)
        except asyncio.CancelledError:
            if self._stopping:  # recorded; said when the creature sends the call again
                await self._status(call.id, Status.FAILED.value, STOPPED)
            else:
                await self._status(call.id, Status.CANCELLED.value, "cancelled by the creature")
            return
        except Exception as e:
            await self._status(call.id, Status.FAILED.value, str(e))
            return
        await self._status(call.id, Status.SUCCEEDED.value)

    async def _on_message(self, msg: protocol.CreatureMsg) -> None:
        if isinstance(msg, protocol.ToolCallMsg):
            await self._on_call(msg)
        elif isinstance(msg, protocol.CancelMsg):
            await self._on_cancel(msg)
        elif isinstance(msg, protocol.WelcomeMsg):
            unsent, self._unsent = self._unsent, []
            for m in unsent:
                await self._status(m["id"], m["status"], m.get("reason"))
        elif isinstance(msg, protocol.ErrorMsg):
            if "hello" not in msg.error:  # a creature without the handshake
                log.warning("creature says: %s", msg.error)

    async def _on_call(self, msg: protocol.ToolCallMsg) -> None:
        known = self.log.get(msg.id)
        if known is not None:  # at-least-once delivery: never twice, say where it stands
            self.stats.duplicates += 1
            live = self._tasks.get(msg.id)
            await self._status(
                msg.id, *repeat_answer(known, live is not None and not live.done(), INTERRUPTED)
            )
            return
        self.log.put(msg.id, Status.ACCEPTED)  # committed before anything moves
        args = msg.arguments
        self.stats.calls += 1
        log.info("call %s: %s", msg.id, {k: v for k, v in args.items() if v})
        call = Call(msg.id, str(args.get("action")), args)
        self._tasks[msg.id] = asyncio.create_task(self._run(call))

    async def _on_cancel(self, msg: protocol.CancelMsg) -> None:
        self.body.halt()  # first: the body stops before anything is said about it
        task = self._tasks.get(msg.id)
        if task is not None and not task.done():
            task.cancel()
            return
        await self._status(msg.id, *cancel_answer(self.log.get(msg.id), INTERRUPTED))
