"""The model server's front: Kyutai's wire protocol at ``/api/chat`` (``chat.py``) and its
speech-to-text protocol at ``/api/asr-streaming`` (``asr.py``), many sessions at once, on the
project's web layer (``track2_voice.common.web``: socket, app server, token and origin check).

Frames go to the ``Scheduler``'s slot for each session, and outputs come back from its batched
step. Each session has its own sender task and a bounded output queue (oldest dropped,
counted): a client that stops reading fills only its own queue, and when its socket has
accepted nothing for ``stall_timeout_s`` the session is closed and its slot freed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from track2_voice.backends.model_kind import ModelKind, sampling_for
from track2_voice.backends.torch_backend import resolve_device, resolve_dtype
from track2_voice.common.web import AppServer, OriginPolicy, bind_socket, token_ok, ws_protocol
from track2_voice.model_server.asr import ASR_PATH, asr_session
from track2_voice.model_server.chat import chat_session
from track2_voice.model_server.engine import BatchEngine
from track2_voice.model_server.options import ServerOptions
from track2_voice.model_server.scheduler import Scheduler

log = logging.getLogger(__name__)

CHAT_PATH = "/api/chat"
START_TIMEOUT_S = 600.0  # loading a 7B model from disk can take minutes
STOP_TIMEOUT_S = 5.0
PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 20.0


class ModelServer:
    """Load the model, run the batch clock and serve ``/api/chat`` (and ``/healthz``)."""

    def __init__(
        self,
        opts: ServerOptions,
        engine: BatchEngine | None = None,
        uvicorn_options: dict[str, Any] | None = None,
    ) -> None:
        """``uvicorn_options`` override the defaults below (``_uvicorn_options``): the command
        passes the project's guarded HTTP protocol there (``common.web.guarded``: connection
        cap and rate, header deadline and size, keep-alive)."""
        opts.check()
        self.opts = opts
        self.uvicorn_options = dict(uvicorn_options or {})
        if engine is None:
            device = resolve_device(opts.device, "--device")
            engine = BatchEngine.load(
                opts.checkpoint,
                opts.slots,
                device,
                resolve_dtype(opts.dtype, device),
                context=opts.context,
                warmup=opts.warmup,
            )
        self.engine = engine
        self.kind = ModelKind.of(engine.model.model_type)
        # flags given win, then the checkpoint's lm_gen_config (Hibiki's carry one)
        self.session_defaults = sampling_for(opts.sampling, engine.model.lm_gen_config)
        self.scheduler = Scheduler(engine, opts.frame_s, opts.input_queue_frames, opts.rollover)
        self.token = None if opts.open_access else opts.token
        self.app = self._build_app()
        self.origins = OriginPolicy(opts.allowed_origins, same_origin=True)
        self._app_server: AppServer | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.stalled_closed = 0

    # -- the app ------------------------------------------------------------------------------

    def _build_app(self):
        from starlette.applications import Starlette
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles

        async def asr(ws) -> None:
            await asr_session(self, ws)

        routes: list = [
            WebSocketRoute(CHAT_PATH, self.chat),
            WebSocketRoute(ASR_PATH, asr),
            Route("/healthz", self._healthz),
        ]
        if self.opts.static_dir:
            routes.append(Mount("/", app=StaticFiles(directory=self.opts.static_dir, html=True)))
        return Starlette(routes=routes)

    async def _healthz(self, request):
        from starlette.responses import JSONResponse

        stats = self.stats()
        return JSONResponse(stats, status_code=200 if stats["healthy"] else 503)

    def stats(self) -> dict[str, Any]:
        st = self.scheduler.stats()
        st["stalled_closed"] = self.stalled_closed
        st["sessions"] = [s.summary() for s in self.scheduler.sessions()]
        return st

    def access_refusal(self, ws: Any, key: str | None = None) -> str | None:
        """Why ``ws`` may not have a session, if it may not. ``key``: a credential sent another
        way (the STT protocol's header)."""
        if not token_ok(key or ws.query_params.get("token") or "", self.token):
            return "missing or wrong access token (add ?token=... to the URL)"
        origin = ws.headers.get("origin")
        if not self.origins.allows(origin, ws.scope):
            return f"browser origin {origin} is not allowed (see --allow-origin)"
        return None

    async def chat(self, ws: Any) -> None:
        """One ``/api/chat`` session on a Starlette WebSocket not yet accepted: what another
        front (a Ray Serve replica, ``cluster.py``) calls instead of this server's own app."""
        await chat_session(self, ws)

    # -- running --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1] if self._sock is not None else self.opts.port

    def url(self, host: str | None = None) -> str:
        """The URL a client uses (with the token when one is needed): ``/api/chat``, or for a
        speech-to-text model ``/api/asr-streaming``."""
        h = host or self.opts.host
        if h in ("0.0.0.0", "::", ""):
            h = socket.gethostname()
        scheme = "wss" if self.opts.ssl_certfile else "ws"
        q = f"?token={self.token}" if self.token else ""
        path = ASR_PATH if self.kind.transcribes else CHAT_PATH
        return f"{scheme}://{h}:{self.port}{path}{q}"

    async def serve(self, announce: Callable[[str], None] | None = None) -> None:
        """Serve until stopped; ``announce(url)`` once listening."""
        self._sock = bind_socket(
            self.opts.host,
            self.opts.port,
            "model server",
            advice="choose another --port",
            send_buffer_bytes=self.opts.send_buffer_bytes,
        )
        self.scheduler.start()
        try:
            self._app_server = AppServer.plain(
                self.app, self._sock, "model-server", **self._uvicorn_options()
            )
            await self._app_server.start()
            self._started.set()
            if announce is not None:
                announce(self.url())
            await self._app_server.task
        finally:
            self.scheduler.stop()
            self._sock.close()

    def _uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's own limits unless the caller's options bring the guarded protocol."""
        return {
            "ws": ws_protocol(self.opts.send_buffer_bytes),
            "ws_max_size": self.opts.max_message_bytes,
            "ws_ping_interval": PING_INTERVAL_S,
            "ws_ping_timeout": PING_TIMEOUT_S,
            "limit_concurrency": self.opts.max_connections,
            "ssl_certfile": self.opts.ssl_certfile,
            "ssl_keyfile": self.opts.ssl_keyfile,
            "timeout_graceful_shutdown": STOP_TIMEOUT_S / 2,
            **self.uvicorn_options,
        }

    def start_in_thread(self) -> ModelServer:
        """Serve on a daemon thread; return once listening (for tests and benchmarks)."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as e:
                errors.append(e)
                self._started.set()

        self._thread = threading.Thread(target=run, name="model-server", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise RuntimeError("model server did not start")
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._app_server is not None:
            self._app_server.server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self.scheduler.stop()

    def __enter__(self) -> ModelServer:
        return self.start_in_thread()

    def __exit__(self, *exc) -> None:
        self.stop()
