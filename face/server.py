"""The face server: serves the page and streams face states to every connected browser.

Why this shape: the fast loop publishes a state every 80 ms from its own thread and must never
wait. ``publish`` serializes once and hands the text to the server's event loop with
``call_soon_threadsafe`` (a non-blocking wake-up). Each client owns a one-slot mailbox (the latest
state wins) and its own sender task, so a slow or dead client only ever delays itself; a client
whose socket accepts nothing for ``stall_timeout_s`` is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from face.config import FaceConfig
from face.viewers import NOT_GAZE, WS_PATH, Viewer, gaze_of, viewer_refusal
from track2_voice.common.limits import RefusalLog, address_key
from track2_voice.common.web import AppServer, CloseCode, OriginGate, bind_socket, token_ok

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

START_TIMEOUT_S = 10.0  # start_in_thread gives up if uvicorn is not listening by then
STOP_TIMEOUT_S = 5.0
NO_CACHE = {"Cache-Control": "no-cache"}
# module scripts and wasm need these types even where the system's MIME table lacks them
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


class FaceServer:
    """``publish(state)`` from any thread; ``await start()``/``aclose()`` on the creature's I/O
    loop, or ``start_in_thread()``/``stop()`` on a loop of its own."""

    def __init__(
        self,
        cfg: FaceConfig | None = None,
        presets: dict[str, Any] | None = None,
        extra_routes: list[BaseRoute] | None = None,
        visemes: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg or FaceConfig()
        self.visemes = visemes or {"shapes": {}}  # the mouth shapes (configs/visemes.yaml)
        self.extra_routes = list(extra_routes or [])  # e.g. the phone's audio endpoint
        self.presets = presets or {"version": 1, "params": {}, "emotions": {}}
        self._clients: set[Viewer] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._app_server: AppServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._last: str | None = None
        self._bound_port = 0  # with port 0, a restart keeps the port it got first
        self.published = 0
        self.stalled_closed = 0
        self.too_big_closed = 0
        self.refusals = RefusalLog()
        # where the page's camera sees the user's face, (x, y) in -1..1 or None when lost, from
        # pages opened with ``gaze_token`` only (a viewer must not steer a robot's head)
        self.gaze_token: str | None = None
        self.on_gaze: Callable[[tuple[float, float] | None], None] | None = None
        self.app = self._build_app()

    # -- the producer side (any thread) -------------------------------------------------
    def publish(self, state: dict[str, Any]) -> None:
        """Queue ``state`` for every client; never blocks. Raises TypeError if not JSON-able."""
        try:
            text = json.dumps(state, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"face state is not JSON-serializable: {e}") from e
        self.publish_text(text)

    def publish_text(self, text: str) -> None:
        """Queue an already-serialized message as-is (the page validates what it gets). On the
        server's own loop this is a direct hand-over; from another thread a wake-up."""
        self._last = text
        self.published += 1
        loop = self._loop
        if loop is None:
            return
        if _running_loop() is loop:
            self._fanout(text)
            return
        try:
            loop.call_soon_threadsafe(self._fanout, text)
        except RuntimeError:  # loop closed while stopping: nobody to tell
            pass

    def _fanout(self, text: str) -> None:
        for c in self._clients:
            c.out.offer(text)

    # -- the HTTP/WebSocket app ---------------------------------------------------------
    def _build_app(self) -> OriginGate:
        routes = [
            Route("/", self._index),
            Route("/healthz", self._healthz),
            Route("/presets.json", self._presets),
            Route("/face-config.json", self._page_config),
            Route("/visemes.json", self._visemes),
            WebSocketRoute(WS_PATH, self._ws),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
            *self.extra_routes,
        ]
        # a page on another site must not watch the face or be the creature's ears
        return OriginGate(
            Starlette(routes=routes),
            self.cfg.allowed_origins,
            same_origin=True,
            on_refused=self.refusals.refused,
        )

    async def _index(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "face.html", headers=NO_CACHE)

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _presets(self, request: Request) -> Response:
        return JSONResponse(self.presets, headers=NO_CACHE)

    async def _visemes(self, request: Request) -> Response:
        return JSONResponse(self.visemes, headers=NO_CACHE)

    async def _page_config(self, request: Request) -> Response:
        return JSONResponse({"gaze": self.cfg.gaze, "ws_path": WS_PATH}, headers=NO_CACHE)

    async def _ws(self, ws: WebSocket) -> None:
        address = address_key(ws.client.host) if ws.client else ""
        why = viewer_refusal(self._clients, self.cfg, address)
        if why is not None:
            self.refusals.refused(why, address)
            await ws.send_denial_response(PlainTextResponse("too many viewers\n", 503))
            return
        await ws.accept()
        token = self.gaze_token
        may_tell = token is not None and token_ok(ws.query_params.get("token"), token)
        client = Viewer(ws, address, may_tell)
        self._clients.add(client)
        if self._last is not None:
            client.out.offer(self._last)
        client.task = asyncio.create_task(self._sender(client))
        try:
            while True:  # the page sends nothing we need; reading notices a closed socket
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                size = len(msg.get("bytes") or b"") + len(msg.get("text") or "")
                if size > self.cfg.max_face_message_bytes:
                    self.too_big_closed += 1
                    self.refusals.refused(
                        f"{WS_PATH}: message over {self.cfg.max_face_message_bytes} B"
                    )
                    await ws.close(code=CloseCode.TOO_BIG, reason="message too big")
                    break
                if client.may_tell and self.on_gaze is not None and msg.get("text"):
                    self._page_said(msg["text"])
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._clients.discard(client)
            client.task.cancel()

    def _page_said(self, text: str) -> None:
        """A trusted page's gaze reaches the creature; anything else it says is ignored."""
        gaze = gaze_of(text)
        if gaze is not NOT_GAZE:
            assert self.on_gaze is not None
            self.on_gaze(gaze)  # type: ignore[arg-type]

    async def _sender(self, c: Viewer) -> None:
        try:
            await c.out.send_all(c.ws.send_text, self.cfg.stall_timeout_s)
        except asyncio.TimeoutError:
            self.stalled_closed += 1
            log.warning("face client stalled for %.1f s: closing it", self.cfg.stall_timeout_s)
            await self._abort(c)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a broken socket ends this client only
            log.debug("face client send failed: %s", e)
            self._clients.discard(c)

    async def _abort(self, c: Viewer) -> None:
        self._clients.discard(c)
        try:
            await asyncio.wait_for(c.ws.close(code=CloseCode.STALLED), 1.0)
        except Exception:
            pass

    def stats(self) -> dict[str, Any]:
        return {
            "ok": True,
            "clients": len(self._clients),
            "published": self.published,
            "overwritten": sum(c.out.dropped for c in list(self._clients)),
            "stalled_closed": self.stalled_closed,
            "too_big_closed": self.too_big_closed,
            "refused": dict(self.refusals.counts),
        }

    # -- running ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (useful with ``port: 0``); valid once started."""
        return self._bound_port or self.cfg.port

    async def start(self) -> FaceServer:
        """Serve on the running asyncio loop (the creature's I/O loop); return once listening.
        Binds first, so a busy port fails loudly and at once."""
        self._loop = asyncio.get_running_loop()
        sock = bind_socket(self.cfg.host, self.cfg.port or self._bound_port, "face.port")
        self._bound_port = sock.getsockname()[1]
        self._app_server = AppServer(
            self.app,
            sock,
            "face-server",
            self.cfg.limits,
            self.refusals,
            ssl_certfile=self.cfg.ssl_certfile,
            ssl_keyfile=self.cfg.ssl_keyfile,
            ws_ping_interval=5.0,
            ws_ping_timeout=10.0,
            timeout_graceful_shutdown=STOP_TIMEOUT_S / 2,  # open sockets must not hold stop()
        )
        await self._app_server.start()
        return self

    async def aclose(self) -> None:
        """Stop serving on the loop it runs on and close every client."""
        server, self._app_server = self._app_server, None
        for c in list(self._clients):
            c.out.ready.set()
            if c.task is not None:
                c.task.cancel()
        self._clients.clear()
        self._loop = None
        if server is not None:
            await server.stop(STOP_TIMEOUT_S)

    # -- running on a thread of its own (tools, tests, the screenshots) --------------------
    def start_in_thread(self) -> FaceServer:
        """Run the server on a daemon thread with its own loop; return once it is listening."""
        started = threading.Event()
        errors: list[BaseException] = []

        async def main() -> None:
            self._stopping = asyncio.Event()
            try:
                await self.start()
            except BaseException as e:  # reported to the caller below
                errors.append(e)
                started.set()
                return
            started.set()
            await self._stopping.wait()
            await self.aclose()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="face-server")
        self._thread.daemon = True
        self._thread.start()
        if not started.wait(START_TIMEOUT_S):
            raise RuntimeError(f"face server did not start within {START_TIMEOUT_S} s")
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop a server started with ``start_in_thread``; safe to call twice."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # its loop already closed
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
