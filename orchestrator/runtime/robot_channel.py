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

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from orchestrator.brain import robot_protocol as protocol
from orchestrator.brain.calls import StatusError, StatusErrorCode
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.events import RobotRefused, RobotReplaced
from orchestrator.runtime.robot_connection import RobotConnection, goodbye, make_ready, receive
from orchestrator.slow_config import RobotConfig
from track2_voice.common.limits import RefusalLog
from track2_voice.common.web import CloseCode, OriginGate, bearer, clip, loads_bounded, token_ok

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
_ERROR_FOR = {
    CloseCode.UNAUTHORIZED: protocol.ErrorCode.UNAUTHORIZED,
    CloseCode.ROBOT_IN_USE: protocol.ErrorCode.ROBOT_IN_USE,
}
_UNAUTHORIZED = {"error": "missing or wrong bearer token"}


def build_app(
    dispatcher: ToolDispatcher, cfg: RobotConfig, token: str, refusals: RefusalLog | None = None
) -> OriginGate:
    refusals = refusals or RefusalLog()
    app = Starlette(routes=RobotChannel(dispatcher, cfg, token, refusals).routes())
    # robots send no Origin; a browser page (which always does) only from an allowed one
    return OriginGate(app, cfg.allowed_origins, same_origin=False, on_refused=refusals.refused)


class RobotChannel:
    """The channel's endpoints over one dispatcher (``build_app`` serves them)."""

    def __init__(
        self, dispatcher: ToolDispatcher, cfg: RobotConfig, token: str, refusals: RefusalLog
    ) -> None:
        self.dispatcher = dispatcher
        self.cfg = cfg
        self.token = token
        self.refusals = refusals
        self.connecting: dict[str, RobotConnection] = {}  # names whose hello is awaited

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/tools", self.tools),
            Route("/health", self.health),
            Route("/calls/{call_id}/status", self.call_status, methods=["POST"]),
            Route("/calls/{call_id}", self.call_get),
            WebSocketRoute("/robot", self.robot_ws),
        ]

    # -- HTTP ------------------------------------------------------------------------------------
    async def tools(self, request: Request) -> JSONResponse:
        full = request.query_params.get("full", "") not in ("", "0", "false")
        return JSONResponse([self.dispatcher.tool_definition(full=full)])

    async def health(self, _: Request) -> JSONResponse:
        robots = self.dispatcher.robots
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
            for r in robots
        ]
        return JSONResponse({"ok": True, "robots": len(robots), "bodies": bodies})

    def _authorized(self, request: Request) -> bool:
        return token_ok(bearer(request.headers), self.token)

    async def call_status(self, request: Request) -> JSONResponse:
        """A status update from a webhook-driven robot: ``{"status": ..., "reason": ...}``."""
        if not self._authorized(request):
            return JSONResponse(_UNAUTHORIZED, status_code=401)
        call_id = request.path_params["call_id"]
        if len(call_id) > self.cfg.max_id_chars:
            return _http_error(
                StatusErrorCode.BAD_ID, f"call id longer than {self.cfg.max_id_chars}"
            )
        body = await self._status_body(request)
        if isinstance(body, JSONResponse):
            return body
        reason = body.get("reason")
        try:
            self.dispatcher.on_status(
                call_id, body["status"], None if reason is None else clip(str(reason), 500), "http"
            )
        except StatusError as e:
            return _http_error(e.code, str(e))
        return JSONResponse({"ok": True})

    async def _status_body(self, request: Request) -> dict | JSONResponse:
        """The body of a status update, read against its cap, or the error to answer."""
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413)
        try:
            body = loads_bounded(bytes(raw), self.cfg.max_json_depth)
        except ValueError as e:
            return JSONResponse({"error": f"body must be JSON: {clip(str(e), 120)}"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return JSONResponse({"error": 'expected {"status": ...}'}, status_code=400)
        return body

    async def call_get(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return JSONResponse(_UNAUTHORIZED, status_code=401)
        call_id = request.path_params["call_id"]
        outbox = self.dispatcher.outbox
        call = outbox.get(call_id)
        if call is None:
            return JSONResponse({"error": f"unknown call id {clip(call_id)!r}"}, status_code=404)
        return JSONResponse(
            {
                "id": call.id,
                "status": call.status,
                "reason": call.reason,
                "arguments": call.args,
                "history": outbox.history(call_id),
            }
        )

    # -- WS /robot ---------------------------------------------------------------------------
    async def robot_ws(self, ws: WebSocket) -> None:
        conn = await self._admit(ws)
        if conn is None:
            return
        conn.send(protocol.welcome())
        sender = asyncio.create_task(conn.sender())
        self.connecting[conn.name] = conn
        # a robot that says no hello is taken as able to do everything after a short wait
        waited = asyncio.get_running_loop().call_later(
            self.cfg.hello_wait_s, make_ready, conn, self.dispatcher
        )
        receiver = asyncio.create_task(receive(ws, conn, self.dispatcher))
        closed = asyncio.create_task(conn.closed.wait())
        try:
            await asyncio.wait({receiver, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waited.cancel()
            if self.connecting.get(conn.name) is conn:
                del self.connecting[conn.name]
            conn._close(conn.why or "disconnected")
            for task in (receiver, sender, closed):
                task.cancel()
            self.dispatcher.robot_disconnected(conn, conn.why)
            await goodbye(ws, conn, self.dispatcher)

    async def _admit(self, ws: WebSocket) -> RobotConnection | None:
        """The new robot's connection, or None when it was refused (a wrong token, a name in
        use); an older connection of the same name goes with ``on_duplicate: take_over``."""
        given = ws.query_params.get("token") or bearer(ws.headers)
        await ws.accept()
        name = clip(ws.query_params.get("robot") or "", MAX_NAME_CHARS) or (
            f"robot@{ws.client.host if ws.client else '?'}"
        )
        if not token_ok(given, self.token):
            await self._refuse(ws, name, CloseCode.UNAUTHORIZED, "missing or wrong token")
            return None
        current = self.dispatcher.robot_named(name) or self.connecting.get(name)
        if current is not None and self.cfg.on_duplicate == "refuse":
            why = f"a robot named {name!r} is already connected (slow_loop.robot.on_duplicate)"
            await self._refuse(ws, name, CloseCode.ROBOT_IN_USE, why)
            return None
        conn = RobotConnection(ws, name, self.cfg)
        if current is not None:
            self._take_over(current, conn)
        return conn

    def _take_over(self, current: RobotConnection, conn: RobotConnection) -> None:
        """The old connection goes, with a recorded event."""
        name = conn.name
        log.warning("robot %s: %s takes over from %s", name, conn.peer, current.peer)
        self.dispatcher.emit(RobotReplaced(robot=name, old_peer=current.peer, new_peer=conn.peer))
        current.replace()
        self.connecting.pop(name, None)
        self.dispatcher.robot_disconnected(current, "replaced by a new connection")

    async def _refuse(self, ws: WebSocket, name: str, code: CloseCode, why: str) -> None:
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        self.refusals.refused(f"robot channel: {why}", peer)
        self.dispatcher.emit(RobotRefused(robot=name, reason=why, peer=peer))
        await ws.send_text(json.dumps(protocol.error(_ERROR_FOR[code], why)))
        await ws.close(code=code, reason=why[:120])


def _http_error(code: StatusErrorCode, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code.value}, status_code=HTTP_STATUS[code])
