"""The robot channel: a small starlette app (served by uvicorn on the creature's I/O loop).

* ``GET /tools``: the tools in OpenAI function-tool form (a JSON list).
* ``GET /health``: ``{"ok": true, "robots": N}``.
* ``WS /robot?token=...&robot=NAME`` (or ``Authorization: Bearer ...``): tool calls and
  cancels out, status updates in. See docs/slow_loop.md for the message shapes. One
  connection per robot name (``slow_loop.robot.on_duplicate``); a browser page may open it
  only from an allowed Origin (``slow_loop.robot.allowed_origins``, default none).
* ``POST /calls/{id}/status`` (Bearer token): status updates from webhook-driven robots.
* ``GET /calls/{id}`` (Bearer token): a call's current status and history.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from orchestrator.brain import capabilities
from orchestrator.brain import robot_protocol as protocol
from orchestrator.brain.calls import StatusError, StatusErrorCode
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.events import RobotRefused, RobotReplaced
from orchestrator.slow_config import RobotConfig
from track2_voice.common.limits import RefusalLog
from track2_voice.common.web import (
    CloseCode,
    JsonTooDeep,
    OriginGate,
    bearer,
    clip,
    loads_bounded,
    token_ok,
)

log = logging.getLogger(__name__)
PROTOCOL_VERSION = protocol.PROTOCOL_VERSION
HTTP_STATUS = {
    StatusErrorCode.UNKNOWN_CALL: 404,
    StatusErrorCode.BAD_STATUS: 400,
    StatusErrorCode.BAD_ID: 400,
    StatusErrorCode.ILLEGAL_TRANSITION: 409,
    StatusErrorCode.NOT_YOURS: 403,
}
MAX_BODY_BYTES = 16384  # POST /calls/{id}/status: a status is a few dozen bytes
MAX_NAME_CHARS = 64


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


def build_app(
    dispatcher: ToolDispatcher, cfg: RobotConfig, token: str, refusals: RefusalLog | None = None
) -> OriginGate:
    refusals = refusals or RefusalLog()

    connecting: dict[str, RobotConnection] = {}  # names whose hello is awaited

    async def tools(request: Request) -> JSONResponse:
        full = request.query_params.get("full", "") not in ("", "0", "false")
        return JSONResponse([dispatcher.tool_definition(full=full)])

    async def health(_: Request) -> JSONResponse:
        bodies = [
            {
                "robot": r.name,
                "body": getattr(r, "body", None),
                "actions": (
                    None
                    if getattr(r, "capabilities", None) is None
                    else [c.action for c in r.capabilities]
                ),
            }
            for r in dispatcher.robots
        ]
        return JSONResponse({"ok": True, "robots": len(dispatcher.robots), "bodies": bodies})

    def authorized(request: Request) -> bool:
        return token_ok(bearer(request.headers), token)

    async def call_status(request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        call_id = request.path_params["call_id"]
        if len(call_id) > cfg.max_id_chars:
            return _http_error(StatusErrorCode.BAD_ID, f"call id longer than {cfg.max_id_chars}")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413)
        try:
            body = loads_bounded(bytes(raw), cfg.max_json_depth)
        except ValueError as e:
            return JSONResponse({"error": f"body must be JSON: {clip(str(e), 120)}"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return JSONResponse({"error": 'expected {"status": ...}'}, status_code=400)
        reason = body.get("reason")
        try:
            dispatcher.on_status(
                call_id, body["status"], None if reason is None else clip(str(reason), 500), "http"
            )
        except StatusError as e:
            return _http_error(e.code, str(e))
        return JSONResponse({"ok": True})

    async def call_get(request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        call_id = request.path_params["call_id"]
        call = dispatcher.outbox.get(call_id)
        if call is None:
            return JSONResponse({"error": f"unknown call id {clip(call_id)!r}"}, status_code=404)
        return JSONResponse(
            {
                "id": call.id,
                "status": call.status,
                "reason": call.reason,
                "arguments": call.args,
                "history": dispatcher.outbox.history(call_id),
            }
        )

    async def refuse(ws: WebSocket, name: str, code: CloseCode, why: str) -> None:
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        refusals.refused(f"robot channel: {why}", peer)
        dispatcher.emit(RobotRefused(robot=name, reason=why, peer=peer))
        await ws.send_text(json.dumps(protocol.error(_ERROR_FOR[code], why)))
        await ws.close(code=code, reason=why[:120])

    async def robot_ws(ws: WebSocket) -> None:
        given = ws.query_params.get("token") or bearer(ws.headers)
        await ws.accept()
        name = clip(ws.query_params.get("robot") or "", MAX_NAME_CHARS) or (
            f"robot@{ws.client.host if ws.client else '?'}"
        )
        if not token_ok(given, token):
            await refuse(ws, name, CloseCode.UNAUTHORIZED, "missing or wrong token")
            return
        current = dispatcher.robot_named(name) or connecting.get(name)
        if current is not None and cfg.on_duplicate == "refuse":
            await refuse(
                ws,
                name,
                CloseCode.ROBOT_IN_USE,
                f"a robot named {name!r} is already connected (slow_loop.robot.on_duplicate)",
            )
            return
        conn = RobotConnection(ws, name, cfg)
        if current is not None:  # take_over: the old connection goes, with a recorded event
            log.warning("robot %s: %s takes over from %s", name, conn.peer, current.peer)
            dispatcher.emit(RobotReplaced(robot=name, old_peer=current.peer, new_peer=conn.peer))
            current.replace()
            connecting.pop(name, None)
            dispatcher.robot_disconnected(current, "replaced by a new connection")
        conn.send(protocol.welcome())
        sender = asyncio.create_task(conn.sender())
        connecting[name] = conn
        # a robot that says no hello is taken as able to do everything after a short wait
        waited = asyncio.get_running_loop().call_later(
            cfg.hello_wait_s, _make_ready, conn, dispatcher
        )
        receiver = asyncio.create_task(_receive(ws, conn, dispatcher))
        closed = asyncio.create_task(conn.closed.wait())
        try:
            await asyncio.wait({receiver, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waited.cancel()
            if connecting.get(name) is conn:
                del connecting[name]
            conn._close(conn.why or "disconnected")
            for task in (receiver, sender, closed):
                task.cancel()
            dispatcher.robot_disconnected(conn, conn.why)
            await _goodbye(ws, conn, dispatcher)

    app = Starlette(
        routes=[
            Route("/tools", tools),
            Route("/health", health),
            Route("/calls/{call_id}/status", call_status, methods=["POST"]),
            Route("/calls/{call_id}", call_get),
            WebSocketRoute("/robot", robot_ws),
        ]
    )
    # robots send no Origin; a browser page (which always does) only from an allowed one
    return OriginGate(app, cfg.allowed_origins, same_origin=False, on_refused=refusals.refused)


async def _goodbye(ws: WebSocket, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
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


def _make_ready(conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
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


_ERROR_FOR = {
    CloseCode.UNAUTHORIZED: protocol.ErrorCode.UNAUTHORIZED,
    CloseCode.ROBOT_IN_USE: protocol.ErrorCode.ROBOT_IN_USE,
}


def _http_error(code: StatusErrorCode, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code.value}, status_code=HTTP_STATUS[code])


async def _receive(ws: WebSocket, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
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
    _make_ready(conn, dispatcher)  # a robot that talks without a hello declared nothing
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
    _make_ready(conn, dispatcher)
