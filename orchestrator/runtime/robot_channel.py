"""The robot channel: a small starlette app (served by uvicorn on the creature's I/O loop).

* ``GET /tools``: the tools in OpenAI function-tool form (a JSON list).
* ``GET /health``: ``{"ok": true, "robots": N}``.
* ``WS /robot?token=...`` (or ``Authorization: Bearer ...``): tool calls and cancels out,
  status updates in. See docs/slow_loop.md for the message shapes.
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

from face.web import CloseCode, bearer, token_ok
from orchestrator.brain.calls import StatusError, StatusErrorCode
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.tools import TOOL_NAME, tool_definition
from orchestrator.slow_config import RobotConfig

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
HTTP_STATUS = {StatusErrorCode.UNKNOWN_CALL: 404, StatusErrorCode.BAD_STATUS: 400}


class RobotConnection:
    """One robot's socket: a bounded send queue drained by its own task, with a send timeout,
    so a robot that never reads can only ever lose its own connection."""

    def __init__(self, ws: WebSocket, name: str, cfg: RobotConfig) -> None:
        self.ws = ws
        self.name = name
        self.cfg = cfg
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=cfg.queue_size)
        self.closed = asyncio.Event()
        self.why = ""

    def send(self, message: dict[str, Any]) -> bool:
        if self.closed.is_set():
            return False
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self._close("send queue full: the robot is not reading")
            return False

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


def build_app(dispatcher: ToolDispatcher, cfg: RobotConfig, token: str) -> Starlette:
    async def tools(_: Request) -> JSONResponse:
        return JSONResponse([tool_definition()])

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "robots": len(dispatcher.robots)})

    def authorized(request: Request) -> bool:
        return token_ok(bearer(request.headers), token)

    async def call_status(request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        call_id = request.path_params["call_id"]
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return JSONResponse({"error": 'expected {"status": ...}'}, status_code=400)
        try:
            dispatcher.on_status(call_id, body["status"], body.get("reason"), "http")
        except StatusError as e:
            return JSONResponse({"error": str(e)}, status_code=HTTP_STATUS[e.code])
        return JSONResponse({"ok": True})

    async def call_get(request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        call_id = request.path_params["call_id"]
        call = dispatcher.outbox.get(call_id)
        if call is None:
            return JSONResponse({"error": f"unknown call id {call_id!r}"}, status_code=404)
        return JSONResponse(
            {
                "id": call.id,
                "status": call.status,
                "reason": call.reason,
                "arguments": call.args,
                "history": dispatcher.outbox.history(call_id),
            }
        )

    async def robot_ws(ws: WebSocket) -> None:
        given = ws.query_params.get("token") or bearer(ws.headers)
        await ws.accept()
        if not token_ok(given, token):
            await ws.send_text(json.dumps({"type": "error", "error": "missing or wrong token"}))
            await ws.close(code=CloseCode.UNAUTHORIZED)
            return
        name = ws.query_params.get("robot") or f"robot@{ws.client.host if ws.client else '?'}"
        conn = RobotConnection(ws, name, cfg)
        conn.send({"type": "welcome", "protocol": PROTOCOL_VERSION, "tools": [TOOL_NAME]})
        sender = asyncio.create_task(conn.sender())
        dispatcher.robot_connected(conn)
        receiver = asyncio.create_task(_receive(ws, conn, dispatcher))
        closed = asyncio.create_task(conn.closed.wait())
        try:
            await asyncio.wait({receiver, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            conn._close(conn.why or "disconnected")
            for task in (receiver, sender, closed):
                task.cancel()
            dispatcher.robot_disconnected(conn, conn.why)
            if conn.why.startswith(("send", "the robot")):
                try:
                    await asyncio.wait_for(ws.close(code=CloseCode.TOO_SLOW), 0.5)
                except Exception:
                    pass

    return Starlette(
        routes=[
            Route("/tools", tools),
            Route("/health", health),
            Route("/calls/{call_id}/status", call_status, methods=["POST"]),
            Route("/calls/{call_id}", call_get),
            WebSocketRoute("/robot", robot_ws),
        ]
    )


async def _receive(ws: WebSocket, conn: RobotConnection, dispatcher: ToolDispatcher) -> None:
    """Status updates from the robot. A bad message gets an error reply; the socket stays."""
    while True:
        try:
            raw = await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            conn._close("disconnected")
            return
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("expected a JSON object")
        except ValueError as e:
            conn.send({"type": "error", "error": f"not a JSON object: {e}"})
            continue
        kind = msg.get("type")
        if kind == "status":
            if not isinstance(msg.get("id"), str) or not isinstance(msg.get("status"), str):
                conn.send({"type": "error", "error": "status needs string 'id' and 'status'"})
                continue
            reason = msg.get("reason")
            try:
                dispatcher.on_status(
                    msg["id"], msg["status"], str(reason) if reason is not None else None, conn.name
                )
            except StatusError as e:
                conn.send({"type": "error", "id": msg["id"], "error": str(e)})
        elif kind == "ping":
            conn.send({"type": "pong"})
        else:
            conn.send(
                {
                    "type": "error",
                    "error": f"unknown message type {kind!r}; expected 'status' or 'ping'",
                }
            )
