"""Binding a socket and running a starlette app on it with uvicorn, inside an asyncio loop
someone else owns.

Why bind ourselves: a busy port is then one clear error at once, and with port 0 the caller
learns the port before the first request.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from track2_voice.common.limits import RefusalLog, ServerLimits, Waiting
from track2_voice.common.web.guarded import uvicorn_options

STARTED_POLL_S = 0.005
# uvicorn's sans-I/O websockets protocol costs less per message than the legacy one; the
# face sends one small message per client per 80 ms frame
WS_IMPL = "websockets-sansio"
FREE_PORT_ADVICE = "choose a free port (0 = any free port)"


def bind_socket(
    host: str,
    port: int,
    what: str,
    advice: str = FREE_PORT_ADVICE,
    send_buffer_bytes: int | None = None,
) -> socket.socket:
    """A listening, non-blocking TCP socket; ``OSError`` names ``what`` (the config key or
    flag) and gives ``advice``. ``send_buffer_bytes``: the kernel send buffer every accepted
    socket inherits (a bound on what each client can leave unread)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"{what}: cannot listen on {host}:{port} ({e.strerror}); {advice}") from e
    sock.listen(128)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def ws_protocol(send_buffer_bytes: int | None = None) -> Any:
    """uvicorn's WebSocket protocol, with a smaller event-loop write buffer per client when
    asked (asyncio's default is 64 KiB): a client that stops reading then blocks its own
    sender after that many bytes, and the stall timeout can close it (``Config(ws=...)``
    takes a protocol class)."""
    if not send_buffer_bytes:
        return WS_IMPL
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class BoundedSendProtocol(WebSocketsSansIOProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            transport.set_write_buffer_limits(high=send_buffer_bytes)
            super().connection_made(transport)

    return BoundedSendProtocol


class AppServer:
    """A starlette app served by uvicorn on a socket, as a task of the running asyncio loop,
    behind the guarded HTTP protocol that enforces ``limits`` (``AppServer.plain``: uvicorn's
    own protocol, for a server whose limits are uvicorn's options)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        name: str,
        limits: ServerLimits | None = None,
        refusals: RefusalLog | None = None,
        **options: Any,
    ) -> None:
        self.limits = limits or ServerLimits()
        self.refusals = refusals or RefusalLog()
        certfile, keyfile = options.pop("ssl_certfile", None), options.pop("ssl_keyfile", None)
        guarded = uvicorn_options(self.limits, name, self.refusals, certfile, keyfile)
        self._serve(app, sock, name, {**guarded, **options})

    @classmethod
    def plain(cls, app: Any, sock: socket.socket, name: str, **options: Any) -> AppServer:
        """uvicorn's own HTTP protocol with ``options`` as given; a ``http`` option (the
        guarded protocol, ``guarded.uvicorn_options``) brings its limits back."""
        self = cls.__new__(cls)
        self.limits, self.refusals = None, None  # type: ignore[assignment]
        self._serve(app, sock, name, options)
        return self

    def _serve(self, app: Any, sock: socket.socket, name: str, options: dict[str, Any]) -> None:
        options = {"log_level": "warning", "lifespan": "off", "ws": WS_IMPL, **options}
        # connections without a request yet, which stop() closes
        self.waiting: Waiting | None = getattr(options.get("http"), "table", None)
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.name = name
        self.task: asyncio.Task | None = None

    async def start(self) -> AppServer:
        """Start serving; return once uvicorn is listening (raises if it stopped first)."""
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name=self.name)
        while not self.server.started:
            if self.task.done():
                self.task.result()  # its exception, if any
                raise RuntimeError(f"{self.name}: the server stopped before it started")
            await asyncio.sleep(STARTED_POLL_S)
        return self

    async def stop(self, timeout_s: float = 3.0) -> None:
        self.server.should_exit = True
        if self.waiting is not None:
            self.waiting.close_all()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout_s)
            except (asyncio.TimeoutError, Exception):
                self.task.cancel()
        self.sock.close()
