"""Web plumbing shared by every endpoint the creature serves (the face, the phone's audio, the
robot channel): binding a socket, running a starlette app on it with uvicorn inside an asyncio
loop someone else owns, token checks and the WebSocket close codes.

Why bind ourselves: a busy port is then one clear error at once, and with port 0 the caller
learns the port before the first request.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")
STARTED_POLL_S = 0.005
# uvicorn's sans-I/O websockets protocol costs less per message than the legacy one; the
# face sends one small message per client per 80 ms frame
WS_IMPL = "websockets-sansio"


class CloseCode(IntEnum):
    """WebSocket close codes the creature's peers understand (4000-4999 are for applications)."""

    STALLED = 1011  # the peer took nothing for too long
    UNAUTHORIZED = 4401  # missing or wrong token
    AUDIO_OFF = 4403  # the phone's audio endpoint is switched off
    TOO_SLOW = 4408  # a robot that does not read its calls
    REPLACED = 4409  # a newer phone took over
    BUSY = 4429  # the creature is already on a call
    BAD_STREAM = 4400  # a call whose stream does not follow the protocol (or its format)


async def bounded(aw: Awaitable[T], timeout_s: float) -> T:
    """``await aw`` with a time limit. ``asyncio.timeout`` (3.11+) adds no task per send, which
    matters when every 80 ms frame goes out to many sockets; ``wait_for`` creates one."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(timeout_s):
            return await aw
    return await asyncio.wait_for(aw, timeout_s)


class Mailbox:
    """The outgoing side of one socket: a bounded drop-oldest queue drained by one sender task,
    so a slow or dead peer only ever delays itself. ``maxlen=1`` is latest-wins (the face)."""

    __slots__ = ("items", "ready", "sent", "dropped")

    def __init__(self, maxlen: int) -> None:
        self.items: deque[Any] = deque(maxlen=maxlen)
        self.ready = asyncio.Event()
        self.sent = 0
        self.dropped = 0

    def offer(self, item: Any) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append(item)
        self.ready.set()

    async def send_all(self, send: Callable[[Any], Awaitable[None]], timeout_s: float) -> None:
        """Send what arrives until cancelled; raises ``asyncio.TimeoutError`` when one send
        takes longer than ``timeout_s`` (the peer stalled)."""
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.items:
                await bounded(send(self.items.popleft()), timeout_s)
                self.sent += 1


def token_ok(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no expected token means the endpoint is open."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if any."""
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def bind_socket(host: str, port: int, what: str) -> socket.socket:
    """A listening, non-blocking TCP socket; ``OSError`` names ``what`` (the config key)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(
            f"{what}: cannot listen on {host}:{port} ({e.strerror}); choose a free port "
            "(0 = any free port)"
        ) from e
    sock.listen(128)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


class AppServer:
    """A starlette app served by uvicorn on a socket, as a task of the running asyncio loop."""

    def __init__(self, app: Any, sock: socket.socket, name: str, **uvicorn_options: Any) -> None:
        options = {"log_level": "warning", "lifespan": "off", "ws": WS_IMPL, **uvicorn_options}
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
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout_s)
            except (asyncio.TimeoutError, Exception):
                self.task.cancel()
        self.sock.close()
