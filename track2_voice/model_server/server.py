"""The model server's front: Kyutai's wire protocol at ``/api/chat``, many sessions at once.

Per session, as ``moshi.server`` does it: accept the WebSocket, send the ``\\x00``
handshake, decode the client's Ogg/Opus pages to 1920-sample frames, and send back one Opus
page per generated frame (kind 1) and the text piece (kind 2). The difference is behind it:
frames go to the ``Scheduler``'s slot for this session, and outputs come back from its
batched step.

Refusals are protocol messages, so every Moshi client shows them: a kind-5 error with a
one-line reason, then a close code (1013 "try again later" when every slot is taken; 1008
for a wrong token, a foreign browser origin or a bad query parameter). They happen before
the handshake and never touch the running sessions.

Each session has its own sender task and a bounded output queue (oldest dropped, counted):
a client that stops reading fills only its own queue, and when its socket has accepted
nothing for ``stall_timeout_s`` the session is closed and its slot freed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from track2_voice.backends.model_kind import ModelKind, is_end_of_passage, sampling_for
from track2_voice.backends.moshi_protocol import Kind, PcmFramer
from track2_voice.backends.torch_backend import resolve_device, resolve_dtype
from track2_voice.frames import SAMPLE_RATE
from track2_voice.model_server.engine import BatchEngine, SlotOutput
from track2_voice.model_server.options import ServerOptions
from track2_voice.model_server.params import ParamError, session_sampling
from track2_voice.model_server.scheduler import NoFreeSlot, Scheduler, Session, SessionStats
from track2_voice.texttap import EOS_PIECE, piece_text

log = logging.getLogger(__name__)

CHAT_PATH = "/api/chat"
HANDSHAKE = bytes([Kind.HANDSHAKE])
CLOSE_TRY_LATER = 1013  # RFC 6455 registry: "Try Again Later"
CLOSE_POLICY = 1008  # "Policy Violation": token, origin, parameters
CLOSE_TOO_BIG = 1009  # "Message Too Big", as uvicorn closes over ws_max_size
CLOSE_STALLED = 1011  # "Internal Error" is the closest standard code to "you stopped reading"
START_TIMEOUT_S = 600.0  # loading a 7B model from disk can take minutes
STOP_TIMEOUT_S = 5.0
WS_IMPL = "websockets-sansio"  # uvicorn's cheapest per-message WebSocket protocol
PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 20.0


class _Outbox:
    """One session's bounded output queue, filled from the engine's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, frames: int) -> None:
        self.loop = loop
        self.queue: deque[SlotOutput] = deque()
        self.frames = frames
        self.ready = asyncio.Event()
        self.stats: SessionStats | None = None  # the session's counters, once it has a slot
        self.closed = False

    def offer(self, out: SlotOutput) -> None:
        """Engine thread: hand over without waiting."""
        if not self.closed:
            try:
                self.loop.call_soon_threadsafe(self._put, out)
            except RuntimeError:  # the loop is gone: the server is stopping
                self.closed = True

    def _put(self, out: SlotOutput) -> None:
        if len(self.queue) >= self.frames:
            self.queue.popleft()
            if self.stats is not None:
                self.stats.dropped_out += 1
        self.queue.append(out)
        self.ready.set()


def ws_protocol(send_buffer_bytes: int | None):
    """uvicorn's WebSocket protocol class, with a smaller event-loop write buffer per client
    when asked (asyncio's default is 64 KiB): a client that stops reading then blocks its own
    sender after that many bytes, and the stall timeout can close it (``Config(ws=...)``
    takes a protocol class)."""
    if not send_buffer_bytes:
        return WS_IMPL
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class BoundedSendProtocol(WebSocketsSansIOProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            transport.set_write_buffer_limits(high=send_buffer_bytes)
            super().connection_made(transport)

    return BoundedSendProtocol


def served_origins(scope: dict[str, Any]) -> set[str]:
    """The origins of a page this server serves (``--static-dir``), for one connection: the
    address the client reached (an IP literal) or one of this machine's names, on this port.
    Never the request's own ``Host`` header, which a DNS-rebinding page sets to its own name
    (track2_voice.common.web.served_origins does the same for the face; this package may not import it)."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    host, port = (scope.get("server") or ("", None))[:2]
    names = {"localhost", "127.0.0.1", "[::1]"}
    try:
        me = socket.gethostname().lower()
        names |= {me, f"{me.split('.', 1)[0]}.local"}
    except OSError:
        pass
    if host:
        names.add(f"[{host}]" if ":" in str(host) else str(host))
    suffix = f":{port}" if port and port != {"http": 80, "https": 443}[scheme] else ""
    return {f"{scheme}://{n}{suffix}" for n in names}


class ModelServer:
    """Load the model, run the batch clock and serve ``/api/chat`` (and ``/healthz``)."""

    def __init__(
        self,
        opts: ServerOptions,
        engine: BatchEngine | None = None,
        uvicorn_options: dict[str, Any] | None = None,
    ) -> None:
        """``uvicorn_options`` override the defaults below: the command passes the project's
        guarded HTTP protocol there (connection cap, header deadline and size, keep-alive),
        which lives outside this package."""
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
        self._server = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.stalled_closed = 0

    # -- the app ------------------------------------------------------------------------------

    def _build_app(self):
        from starlette.applications import Starlette
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles

        from track2_voice.model_server.asr import ASR_PATH, asr_session

        async def asr(ws) -> None:
            await asr_session(self, ws)

        routes: list = [
            WebSocketRoute(CHAT_PATH, self._chat),
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

    def _access_refusal(self, ws, key: str | None = None) -> str | None:
        """``key``: a credential sent another way (the STT protocol's header)."""
        if self.token is not None:
            given = key or ws.query_params.get("token") or ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return "missing or wrong access token (add ?token=... to the URL)"
        origin = ws.headers.get("origin")
        if origin is not None and not self._origin_ok(origin, ws.scope):
            return f"browser origin {origin} is not allowed (see --allow-origin)"
        return None

    def _origin_ok(self, origin: str, scope: dict[str, Any]) -> bool:
        if origin in self.opts.allowed_origins:
            return True
        return origin.strip().lower().rstrip("/") in served_origins(scope)  # our own page

    async def _refuse(self, ws, reason: str, code: int) -> None:
        log.info("refused a session: %s", reason)
        try:
            await ws.send_bytes(bytes([Kind.ERROR]) + reason.encode())
            await ws.close(code=code, reason=reason[:120])
        except Exception:  # the client left first
            pass

    async def chat(self, ws) -> None:
        """One ``/api/chat`` session on a Starlette WebSocket not yet accepted: what another
        front (a Ray Serve replica, ``cluster.py``) calls instead of this server's own app."""
        await self._chat(ws)

    async def _chat(self, ws) -> None:
        await ws.accept()
        reason = self._access_refusal(ws)
        if reason is not None:
            return await self._refuse(ws, reason, CLOSE_POLICY)
        if self.kind.transcribes:
            reason = "this server runs a speech-to-text model: use /api/asr-streaming"
            return await self._refuse(ws, reason, CLOSE_POLICY)
        try:
            sampling = session_sampling(ws.query_params, self.session_defaults)
        except ParamError as e:
            return await self._refuse(ws, str(e), CLOSE_POLICY)
        box = _Outbox(asyncio.get_running_loop(), self.opts.output_queue_frames)
        try:
            session = self.scheduler.join(sampling, box.offer)
        except NoFreeSlot as e:
            return await self._refuse(ws, str(e), CLOSE_TRY_LATER)
        box.stats = session.stats
        log.info("session in slot %d (%d free)", session.slot, self.scheduler.free_slots())
        tasks: list[asyncio.Task] = []
        try:
            if self.opts.instance is not None:
                meta = json.dumps({**self.opts.instance, "slot": session.slot})
                await ws.send_bytes(bytes([Kind.METADATA]) + meta.encode())
            await ws.send_bytes(HANDSHAKE)
            tasks = [
                asyncio.create_task(self._send_loop(ws, box, session)),
                asyncio.create_task(self._recv_loop(ws, session)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except Exception as e:
            log.debug("session in slot %d ended: %s", session.slot, e)
        finally:
            box.closed = True
            self.scheduler.leave(session)
            for t in tasks:
                t.cancel()
            log.info("session in slot %d left: %s", session.slot, session.summary())
            try:
                await asyncio.wait_for(ws.close(), 1.0)
            except Exception:
                pass

    async def _recv_loop(self, ws, session: Session) -> None:
        import sphn

        reader = sphn.OpusStreamReader(SAMPLE_RATE)
        framer = PcmFramer()
        idle = self.opts.idle_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(ws.receive(), idle)
            except asyncio.TimeoutError:
                log.info("slot %d: no message for %g s; closing it", session.slot, idle)
                await self._error(ws, f"closing: nothing received for {idle:g} s")
                return
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("bytes")
            if data is None:
                await self._error(ws, "expected binary messages (kind byte + payload)")
                continue
            if not data:
                continue
            if len(data) > self.opts.max_message_bytes:  # a front that allows more (Ray's proxy)
                limit = self.opts.max_message_bytes
                await self._error(ws, f"a {len(data)}-byte message is over {limit} bytes; closing")
                await ws.close(code=CLOSE_TOO_BIG)
                return
            kind = data[0]
            if kind != Kind.AUDIO:
                continue  # as moshi.server: other kinds from a client are ignored
            try:
                pcm = reader.append_bytes(data[1:])
            except Exception as e:
                await self._error(ws, f"undecodable Ogg/Opus audio: {e}")
                reader = sphn.OpusStreamReader(SAMPLE_RATE)
                continue
            for frame in framer.push(np.asarray(pcm, dtype=np.float32)):
                self.scheduler.push(session, frame)

    async def _error(self, ws, text: str) -> None:
        await ws.send_bytes(bytes([Kind.ERROR]) + text.encode())

    async def _send_loop(self, ws, box: _Outbox, session: Session) -> None:
        import sphn

        writer = sphn.OpusStreamWriter(SAMPLE_RATE)
        tok = self.engine.tokenizer
        while True:
            await box.ready.wait()
            box.ready.clear()
            while box.queue:
                out = box.queue.popleft()
                msgs = []
                if out.pcm is not None:
                    page = writer.append_pcm(out.pcm)
                    if len(page):
                        msgs.append(bytes([Kind.AUDIO]) + page)
                if out.text_id is not None:
                    piece = piece_text(tok, out.text_id)
                    if is_end_of_passage(out.text_id, self.kind):
                        piece = EOS_PIECE  # as hibiki-zero serve sends it: its clients know it
                    if piece:
                        msgs.append(bytes([Kind.TEXT]) + piece.encode())
                for m in msgs:
                    try:
                        await asyncio.wait_for(ws.send_bytes(m), self.opts.stall_timeout_s)
                    except asyncio.TimeoutError:
                        self.stalled_closed += 1
                        log.warning(
                            "slot %d: the client read nothing for %.1f s; closing it",
                            session.slot,
                            self.opts.stall_timeout_s,
                        )
                        box.closed = True
                        self.scheduler.leave(session)
                        try:
                            await asyncio.wait_for(ws.close(code=CLOSE_STALLED), 1.0)
                        except Exception:
                            pass
                        return

    # -- running --------------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        host = self.opts.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.opts.send_buffer_bytes:
            # accepted sockets inherit it: a bound on what each client can leave unread
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.opts.send_buffer_bytes)
        try:
            sock.bind((host, self.opts.port))
        except OSError as e:
            sock.close()
            raise OSError(
                f"model server: cannot listen on {host}:{self.opts.port} ({e.strerror}); "
                "choose another --port"
            ) from e
        sock.set_inheritable(True)
        return sock

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1] if self._sock is not None else self.opts.port

    def url(self, host: str | None = None) -> str:
        """The URL a client uses (with the token when one is needed): ``/api/chat``, or for a
        speech-to-text model ``/api/asr-streaming``."""
        from track2_voice.model_server.asr import ASR_PATH

        h = host or self.opts.host
        if h in ("0.0.0.0", "::", ""):
            h = socket.gethostname()
        scheme = "wss" if self.opts.ssl_certfile else "ws"
        q = f"?token={self.token}" if self.token else ""
        path = ASR_PATH if self.kind.transcribes else CHAT_PATH
        return f"{scheme}://{h}:{self.port}{path}{q}"

    async def serve(self, announce: Callable[[str], None] | None = None) -> None:
        """Serve until stopped; ``announce(url)`` once listening."""
        import uvicorn

        self._loop = asyncio.get_running_loop()
        self._sock = self._bind()
        self.scheduler.start()
        options: dict[str, Any] = {
            "log_level": "warning",
            "lifespan": "off",
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
        config = uvicorn.Config(self.app, **options)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        watcher = asyncio.create_task(self._signal_started(announce))
        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            watcher.cancel()
            self.scheduler.stop()
            self._sock.close()

    async def _signal_started(self, announce: Callable[[str], None] | None) -> None:
        while self._server is not None and not self._server.started:
            await asyncio.sleep(0.01)
        self._started.set()
        if announce is not None:
            announce(self.url())

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
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self.scheduler.stop()

    def __enter__(self) -> ModelServer:
        return self.start_in_thread()

    def __exit__(self, *exc) -> None:
        self.stop()
