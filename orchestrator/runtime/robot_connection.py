"""One robot's connection to the robot channel: its bounded send queue and the messages it
sends (``hello``, ``status``, ``ping``), typed by ``orchestrator.brain.robot_protocol``.

A bad message gets an error reply and the socket stays; a hello the creature cannot take closes
the connection with the reason (4400), since a body that declares what it cannot be given must
be fixed, not half-used.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from orchestrator.brain import capabilities
from orchestrator.brain import robot_protocol as protocol
from orchestrator.brain.calls import StatusError
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.events import RobotRefused
from orchestrator.slow_config import RobotConfig
from track2_voice.common.web import CloseCode, JsonTooDeep, clip, loads_bounded


class RobotConnection:
    """One robot's socket: a bounded send queue drained by its own task, with a send timeout,
    so a robot that never reads can only ever lose its own connection."""

    def __init__(self, ws: WebSocket, name: str, cfg: RobotConfig) -> None:
        self.ws = ws
        self.name = name
        self.peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        self.cfg = cfg
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=cfg.queue_size)
        self.closed = asyncio.Event()
        self.why = ""
        self.last_words: dict[str, Any] | None = None  # sent just before the close frame
        # what its hello said (docs/bodies.md); None: it declared nothing, so everything
        self.body: str | None = None
        self.capabilities: tuple[protocol.Capability, ...] | None = None
        self.ready = False  # routed to: after its hello, its first other message, or a wait

    def send(self, message: dict[str, Any]) -> bool:
        if self.closed.is_set():
            return False
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self._close("send queue full: the robot is not reading")
            return False

    def replace(self) -> None:
        self._close("replaced: another connection took this robot's name")

    def _close(self, why: str) -> None:
        if not self.closed.is_set():
            self.why = why
            self.closed.set()

    async def sender(self) -> None:
        try:
            while not self.closed.is_set():
                msg = await self.queue.get()
                await asyncio.wait_for(
                    self.ws.send_text(json.dumps(msg)), timeout=self.cfg.send_timeout_s
                )
        except asyncio.TimeoutError:
            self._close(f"send took over {self.cfg.send_timeout_s}s: the robot is not reading")
        except Exception as e:  # the socket went away
            self._close(f"send failed: {e}")


async def goodbye(ws: WebSocket, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
    """The close frame that says why (and, for a refused hello, the error reply first)."""
    code = _CLOSE_FOR.get(conn.why.split(":", 1)[0])
    if code is None:
        return
    if conn.last_words is not None:
        dispatcher.emit(RobotRefused(robot=conn.name, reason=conn.why, peer=conn.peer))
    try:
        if conn.last_words is not None:
            await asyncio.wait_for(ws.send_text(json.dumps(conn.last_words)), 0.5)
        await asyncio.wait_for(ws.close(code=code, reason=conn.why[:120]), 0.5)
    except Exception:
        pass


def make_ready(conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
    """From now on calls are routed to ``conn`` (once)."""
    if conn.ready or conn.closed.is_set():
        return
    conn.ready = True
    dispatcher.robot_connected(conn)


_CLOSE_FOR = {
    "bad hello": CloseCode.BAD_STREAM,
    "send queue full": CloseCode.TOO_SLOW,
    "send took over": CloseCode.TOO_SLOW,
    "send failed": None,
    "replaced": CloseCode.REPLACED,
}


async def receive(ws: WebSocket, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
    """Messages from the robot. A bad one gets an error reply; the socket stays."""
    while True:
        try:
            frame = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            frame = {"type": "websocket.disconnect"}
        if frame["type"] == "websocket.disconnect":
            conn._close("disconnected")
            return
        try:
            msg = _parse(frame, conn.cfg)
        except protocol.ProtocolError as e:
            if e.code is protocol.ErrorCode.BAD_HELLO and not conn.ready:
                _refuse_hello(conn, e)
                return
            conn.send(protocol.error(e.code, str(e), e.id))
            continue
        _handle(msg, conn, dispatcher)


def _parse(frame: dict[str, Any], cfg: RobotConfig) -> protocol.RobotMsg:
    raw = frame.get("text")
    if raw is None:  # a binary frame: not part of the protocol, but no reason to drop the link
        raise protocol.ProtocolError(
            protocol.ErrorCode.BINARY, "binary frames are not part of the protocol; send JSON text"
        )
    try:
        decoded = loads_bounded(raw, cfg.max_json_depth)
    except JsonTooDeep as e:
        raise protocol.ProtocolError(protocol.ErrorCode.TOO_DEEP, str(e)) from None
    except ValueError as e:
        raise protocol.ProtocolError(
            protocol.ErrorCode.BAD_JSON, clip(f"not a JSON object: {e}", 200)
        ) from None
    return protocol.parse_from_robot(decoded, cfg.max_id_chars)


def _handle(msg: protocol.RobotMsg, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
    if isinstance(msg, protocol.HelloMsg):
        _hello(msg, conn, dispatcher)
        return
    make_ready(conn, dispatcher)  # a robot that talks without a hello declared nothing
    if isinstance(msg, protocol.StatusMsg):
        try:
            dispatcher.on_status(
                msg.id, msg.status, msg.reason, conn.name, conn, msg.progress, msg.text
            )
        except StatusError as e:
            conn.send(protocol.error(e.code.value, str(e), msg.id))
    elif isinstance(msg, protocol.PingMsg):
        conn.send(protocol.pong())


def _refuse_hello(conn: RobotConnection, e: protocol.ProtocolError) -> None:
    """A body that declares what the creature cannot take must be fixed, not half-used."""
    conn.last_words = protocol.error(e.code, str(e))
    conn._close(f"bad hello: {e}")


def _hello(msg: protocol.HelloMsg, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
    """The body's declaration: checked against the actions, answered with ``ready``; one it
    cannot take closes the connection (4400) with the reason, a refusal on the record."""
    if conn.ready:
        conn.send(
            protocol.error(
                protocol.ErrorCode.BAD_HELLO,
                "hello must be the first message (this connection already gets calls)",
            )
        )
        return
    try:
        capabilities.check(dispatcher.schema.actions, msg.capabilities)
    except protocol.ProtocolError as e:
        _refuse_hello(conn, e)
        return
    conn.body, conn.capabilities = msg.body, msg.capabilities
    actions = None if msg.capabilities is None else [c.action for c in msg.capabilities]
    conn.send(protocol.ready(conn.name, conn.body, actions))  # before any call it is sent
    make_ready(conn, dispatcher)
