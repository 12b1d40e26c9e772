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
from collections.abc import Awaitable, Callable, Collection
from enum import IntEnum
from typing import Any, TypeVar

import uvicorn

from track2_voice.common.errors import CreatureError
from track2_voice.common.limits import RefusalLog, ServerLimits
from track2_voice.common.limits import uvicorn_options as limit_options

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


def this_host_names() -> frozenset[str]:
    """The names by which this machine's own pages are reached: loopback, its host name (and
    the ``.local`` one mDNS gives it). An attacker's page cannot have one of these as its
    origin, whatever its DNS answers."""
    names = {"localhost", "127.0.0.1", "[::1]"}
    try:
        host = socket.gethostname().lower()
    except OSError:
        host = ""
    if host:
        names |= {host, f"{host.split('.', 1)[0]}.local"}
    return frozenset(names)


def served_origins(scope: Any, names: Collection[str] = ()) -> set[str]:
    """The origins of the pages this server serves, for one connection: its scheme, the
    address the client reached (an IP literal: no DNS rebinding can claim it) or one of this
    machine's ``names``, and the port it listens on. Never the client's own ``Host`` header:
    a page on ``evil.example`` whose name resolves to this machine sends ``Host:
    evil.example`` and ``Origin: http://evil.example`` alike."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    server = scope.get("server") or ("", None)
    host, port = str(server[0] or ""), server[1]
    hosts = set(names)
    if host:
        hosts.add(f"[{host}]" if ":" in host else host)
    suffix = f":{port}" if port and port != {"http": 80, "https": 443}[scheme] else ""
    return {f"{scheme}://{h.lower()}{suffix}" for h in hosts}


def origin_allowed(origin: str | None, allowed: Collection[str], served: Collection[str]) -> bool:
    """A browser always sends ``Origin`` with a WebSocket handshake; a robot or a script need
    not. No Origin is allowed (not a browser page); else it must be on ``allowed`` or be one
    of the ``served`` origins (``served_origins``)."""
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    if "*" in allowed or origin in {o.lower().rstrip("/") for o in allowed}:
        return True
    return origin != "null" and origin in served


class OriginGate:
    """ASGI middleware: a WebSocket handshake whose ``Origin`` is not allowed is refused with
    HTTP 403 before the app sees it (so a web page on the host cannot open the socket). With
    ``same_origin`` the server's own pages may too (``served_origins``: the address the client
    reached or one of ``host_names``, default this machine's names, on this server's port)."""

    def __init__(
        self,
        app: Any,
        allowed: list[str],
        same_origin: bool,
        on_refused: Any,
        host_names: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.allowed = list(allowed)
        self.same_origin = same_origin
        self.on_refused = on_refused  # on_refused(what, detail)
        self.host_names = this_host_names() if host_names is None else frozenset(host_names)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            origin = None
            for k, v in scope["headers"]:
                if k == b"origin":
                    origin = v.decode("latin-1")
            served = served_origins(scope, self.host_names) if self.same_origin else set()
            if not origin_allowed(origin, self.allowed, served):
                self.on_refused(f"{scope['path']}: foreign Origin", (origin or "")[:80])
                await send({"type": "websocket.close", "code": CloseCode.BAD_ORIGIN})
                return
        await self.app(scope, receive, send)


class MalformedJson(CreatureError, ValueError):
    """A message the shared parser refuses: not JSON, too large, too deep, or an integer with
    more digits than Python converts. One type, so every socket's handler answers it the same
    way (an error reply; the socket stays open)."""


class JsonTooDeep(MalformedJson):
    pass


class JsonTooBig(MalformedJson):
    pass


MAX_JSON_BYTES = 65536  # the default size cap: every socket's messages are smaller


def loads_bounded(raw: str | bytes, max_depth: int, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``json.loads`` for what a peer sends: anything it cannot take is a ``MalformedJson``
    (a ValueError): input over ``max_bytes`` (refused before parsing), nesting deeper than
    ``max_depth`` (the standard parser raises RecursionError, which no handler expects), an
    integer over Python's digit limit (4,300 by default: a ValueError from ``int``), bytes
    that are not UTF-8, or text that is not JSON."""
    size = len(raw)  # of text, characters: a cheap lower bound on its bytes
    if size > max_bytes:
        raise JsonTooBig(f"a {size}-byte JSON message is over {max_bytes} bytes")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, int's digit limit
        raise MalformedJson(str(e)[:200]) from None
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
        certfile = uvicorn_options.pop("ssl_certfile", None)
        keyfile = uvicorn_options.pop("ssl_keyfile", None)
        options = {
            "log_level": "warning",
            "lifespan": "off",
            "ws": WS_IMPL,
            **limit_options(self.limits, name, self.refusals, certfile, keyfile),
            **uvicorn_options,
        }
        self.waiting = options["http"].table  # connections without a request yet
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
        self.waiting.close_all()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, timeout_s)
            except (asyncio.TimeoutError, Exception):
                self.task.cancel()
        self.sock.close()
