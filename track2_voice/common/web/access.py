"""Who may connect: the token check and the browser-origin check every endpoint uses.

Why the origin check is ours: a browser sends ``Origin`` with every WebSocket handshake and
lets any page open a socket to any address, so a page on another site could otherwise watch
the face, be the creature's ears or drive a robot from a user's own browser on the LAN.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Callable, Collection
from typing import Any

from track2_voice.common.web.close_codes import CloseCode

_TEXT = ("utf-8", "surrogatepass")  # a credential from JSON may hold a lone surrogate


def token_ok(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no expected token means the endpoint is open."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(*_TEXT), expected.encode(*_TEXT))


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


def lan_address() -> str:
    """Best guess of this machine's LAN address, for printing a URL a phone can open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


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


class OriginPolicy:
    """Which browser origins one server lets in: those on ``allowed`` and, with
    ``same_origin``, the server's own pages (``served_origins``: the address the client
    reached or one of ``host_names``, default this machine's names, on this server's port)."""

    def __init__(
        self,
        allowed: Collection[str],
        same_origin: bool,
        host_names: Collection[str] | None = None,
    ) -> None:
        self.allowed = list(allowed)
        self.same_origin = same_origin
        self.host_names = this_host_names() if host_names is None else frozenset(host_names)

    def allows(self, origin: str | None, scope: Any) -> bool:
        served = served_origins(scope, self.host_names) if self.same_origin else set()
        return origin_allowed(origin, self.allowed, served)


def origin_of(scope: Any) -> str | None:
    """The ``Origin`` header of an ASGI connection (the last one, if sent twice)."""
    origin = None
    for k, v in scope["headers"]:
        if k == b"origin":
            origin = v.decode("latin-1")
    return origin


class OriginGate:
    """ASGI middleware: a WebSocket handshake whose ``Origin`` the ``OriginPolicy`` refuses
    gets HTTP 403 before the app sees it (so a web page on the host cannot open the socket)."""

    def __init__(
        self,
        app: Any,
        allowed: list[str],
        same_origin: bool,
        on_refused: Callable[[str, str], None],
        host_names: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.policy = OriginPolicy(allowed, same_origin, host_names)
        self.on_refused = on_refused  # on_refused(what, detail)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            origin = origin_of(scope)
            if not self.policy.allows(origin, scope):
                self.on_refused(f"{scope['path']}: foreign Origin", (origin or "")[:80])
                await send({"type": "websocket.close", "code": CloseCode.BAD_ORIGIN})
                return
        await self.app(scope, receive, send)
