"""Web plumbing shared by every endpoint the creature serves (the face, the phone's audio, the
robot channel): binding a socket, running a starlette app on it with uvicorn inside an asyncio
loop someone else owns, token checks and the WebSocket close codes.

Why bind ourselves: a busy port is then one clear error at once, and with port 0 the caller
learns the port before the first request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any, TypeVar

import uvicorn

from face.limits import RefusalLog, ServerLimits
from face.limits import uvicorn_options as limit_options

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
    REPLACED = 4409  # a newer phone (or robot, with take_over) took over
    BUSY = 4429  # the creature is already on a call
    BAD_STREAM = 4400  # a call whose stream does not follow the protocol (or its format)
    BAD_ORIGIN = 4406  # a browser page from an origin not on the allow-list
    ROBOT_IN_USE = 4410  # a robot of this name is already connected
    TOO_BIG = 1009  # a message larger than this endpoint accepts


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


def origin_allowed(headers: Any, allowed: list[str], same_origin: bool) -> bool:
    """A browser always sends ``Origin`` with a WebSocket handshake; a robot or a script need
    not. No Origin is allowed (not a browser page); else it must be on ``allowed`` or, with
    ``same_origin``, be the page's own origin (same host and port as the request's Host)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    if origin in {o.lower().rstrip("/") for o in allowed} or "*" in allowed:
        return True
    if same_origin and origin != "null":
        host = headers.get("host", "").strip().lower()
        return bool(host) and origin.split("://", 1)[-1] == host
    return False


class OriginGate:
    """ASGI middleware: a WebSocket handshake whose ``Origin`` is not allowed is refused with
    HTTP 403 before the app sees it (so a web page on the host cannot open the socket)."""

    def __init__(self, app: Any, allowed: list[str], same_origin: bool, on_refused: Any) -> None:
        self.app = app
        self.allowed = list(allowed)
        self.same_origin = same_origin
        self.on_refused = on_refused  # on_refused(what, detail)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            if not origin_allowed(headers, self.allowed, self.same_origin):
                self.on_refused(f"{scope['path']}: foreign Origin", headers.get("origin", "")[:80])
                await send({"type": "websocket.close", "code": CloseCode.BAD_ORIGIN})
                return
        await self.app(scope, receive, send)


class JsonTooDeep(ValueError):
    pass


def loads_bounded(raw: str | bytes, max_depth: int) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` with a ValueError (the
    standard parser would raise RecursionError, which no handler expects)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return value


def clip(text: str, n: int = 64) -> str:
    """An id or value to quote in an error reply, never longer than ``n``."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} chars)"


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

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        name: str,
        limits: ServerLimits | None = None,
        refusals: RefusalLog | None = None,
        **uvicorn_options: Any,
    ) -> None:
        self.limits = limits or ServerLimits()
        self.refusals = refusals or RefusalLog()
        options = {
            "log_level": "warning",
            "lifespan": "off",
            "ws": WS_IMPL,
            **limit_options(self.limits, name, self.refusals),
            **uvicorn_options,
        }
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
