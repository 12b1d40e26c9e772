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
import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from face.aio import bounded
from face.config import FaceConfig

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
WS_PATH = "/ws/face"
START_TIMEOUT_S = 10.0  # start_in_thread gives up if uvicorn is not listening by then
STOP_TIMEOUT_S = 5.0
NO_CACHE = {"Cache-Control": "no-cache"}
# uvicorn's sans-I/O websockets protocol costs less per message than the legacy one; the
# face sends one small message per client per 80 ms frame
WS_IMPL = "websockets-sansio"
# module scripts and wasm need these types even where the system's MIME table lacks them
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


class _Client:
    """One browser: a latest-wins slot and the task that sends it."""

    __slots__ = ("ws", "slot", "ready", "sent", "overwritten", "task")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.slot: str | None = None
        self.ready = asyncio.Event()
        self.sent = 0
        self.overwritten = 0
        self.task: asyncio.Task | None = None

    def offer(self, text: str) -> None:
        if self.slot is not None:
            self.overwritten += 1
        self.slot = text
        self.ready.set()


class FaceServer:
    """``publish(state)`` from any thread; ``serve()`` (async) or ``start_in_thread()``/``stop()``."""

    def __init__(
        self,
        cfg: FaceConfig | None = None,
        presets: dict[str, Any] | None = None,
        extra_routes: list[BaseRoute] | None = None,
    ) -> None:
        self.cfg = cfg or FaceConfig()
        self.extra_routes = list(extra_routes or [])  # e.g. the phone's audio endpoint
        self.presets = presets or {"version": 1, "params": {}, "emotions": {}}
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._last: str | None = None
        self._bound_port = 0  # with port 0, a restart keeps the port it got first
        self.published = 0
        self.stalled_closed = 0
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
        """Queue an already-serialized message as-is (the page validates what it gets)."""
        self._last = text
        self.published += 1
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._fanout, text)
        except RuntimeError:  # loop closed while stopping: nobody to tell
            pass

    def _fanout(self, text: str) -> None:
        for c in self._clients:
            c.offer(text)

    # -- the HTTP/WebSocket app ---------------------------------------------------------
    def _build_app(self) -> Starlette:
        routes = [
            Route("/", self._index),
            Route("/healthz", self._healthz),
            Route("/presets.json", self._presets),
            Route("/face-config.json", self._page_config),
            WebSocketRoute(WS_PATH, self._ws),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
            *self.extra_routes,
        ]
        return Starlette(routes=routes)

    async def _index(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "face.html", headers=NO_CACHE)

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _presets(self, request: Request) -> Response:
        return JSONResponse(self.presets, headers=NO_CACHE)

    async def _page_config(self, request: Request) -> Response:
        return JSONResponse({"gaze": self.cfg.gaze, "ws_path": WS_PATH}, headers=NO_CACHE)

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        client = _Client(ws)
        self._clients.add(client)
        if self._last is not None:
            client.offer(self._last)
        client.task = asyncio.create_task(self._sender(client))
        try:
            while True:  # the page sends nothing we need; reading notices a closed socket
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._clients.discard(client)
            client.task.cancel()

    async def _sender(self, c: _Client) -> None:
        try:
            while True:
                await c.ready.wait()
                c.ready.clear()
                text, c.slot = c.slot, None
                if text is None:
                    continue
                try:
                    await bounded(c.ws.send_text(text), self.cfg.stall_timeout_s)
                except asyncio.TimeoutError:
                    self.stalled_closed += 1
                    log.warning(
                        "face client stalled for %.1f s: closing it", self.cfg.stall_timeout_s
                    )
                    await self._abort(c)
                    return
                c.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a broken socket ends this client only
            log.debug("face client send failed: %s", e)
            self._clients.discard(c)

    async def _abort(self, c: _Client) -> None:
        self._clients.discard(c)
        try:
            await asyncio.wait_for(c.ws.close(code=1011), 1.0)
        except Exception:
            pass

    def stats(self) -> dict[str, Any]:
        return {
            "ok": True,
            "clients": len(self._clients),
            "published": self.published,
            "overwritten": sum(c.overwritten for c in list(self._clients)),
            "stalled_closed": self.stalled_closed,
        }

    # -- running ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (useful with ``port: 0``); valid once started."""
        if self._sock is None:
            return self.cfg.port
        return self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        host = self.cfg.host
        if host in ("0.0.0.0", "::", ""):
            host = _lan_address()
        scheme = "https" if self.cfg.ssl_certfile else "http"
        return f"{scheme}://{host}:{self.port}/"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.cfg.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.cfg.host, self.cfg.port or self._bound_port))
        except OSError as e:
            sock.close()
            raise OSError(
                f"face server: cannot listen on {self.cfg.host}:{self.cfg.port} ({e.strerror}); "
                "set face.port to a free port"
            ) from e
        sock.set_inheritable(True)
        self._bound_port = sock.getsockname()[1]
        return sock

    async def serve(self) -> None:
        """Serve until ``stop()``; binds first so a busy port fails loudly and at once."""
        self._loop = asyncio.get_running_loop()
        sock = self._sock = self._bind()
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            ws=WS_IMPL,
            ssl_certfile=self.cfg.ssl_certfile,
            ssl_keyfile=self.cfg.ssl_keyfile,
            ws_ping_interval=5.0,
            ws_ping_timeout=10.0,
            timeout_graceful_shutdown=STOP_TIMEOUT_S / 2,  # open sockets must not hold stop()
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        watcher = asyncio.create_task(self._signal_started())
        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            watcher.cancel()
            for c in list(self._clients):
                if c.task is not None:
                    c.task.cancel()
            self._clients.clear()
            self._loop = None
            sock.close()  # this run's socket: a restart may already have bound a new one

    async def _signal_started(self) -> None:
        while self._server is not None and not self._server.started:
            await asyncio.sleep(0.01)
        self._started.set()

    def start_in_thread(self) -> FaceServer:
        """Run ``serve()`` on a daemon thread; return once it is listening."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as e:  # reported to the caller below
                errors.append(e)
                self._started.set()

        self._started.clear()
        self._thread = threading.Thread(target=run, name="face-server", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise RuntimeError(f"face server did not start within {START_TIMEOUT_S} s")
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving and close every client; safe to call twice."""
        server, loop = self._server, self._loop
        if server is not None:
            server.should_exit = True
            if loop is not None:
                try:
                    for c in list(self._clients):
                        loop.call_soon_threadsafe(c.ready.set)
                except RuntimeError:
                    pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self._started.clear()


def _lan_address() -> str:
    """Best guess of this machine's LAN address, for printing a URL a phone can open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()
