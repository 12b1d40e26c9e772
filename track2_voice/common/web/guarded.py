"""uvicorn's HTTP protocol, guarded: a connection cap, a per-address connection rate, a deadline
and a size cap for a request's headers, slow connections shed first, and (with TLS) the
handshake done here, after those checks and under the same deadline.

Why a protocol of our own: uvicorn caps WebSocket messages (``ws_max_size``) and header size
(``h11_max_incomplete_event_size``), but it neither caps open connections (its
``limit_concurrency`` answers 503 only once a request is complete, so half-sent requests still
hold their file handles) nor times out a request whose headers never finish, nor limits how fast
one address opens connections. What the limits are, and the tables that keep them, live in
``track2_voice.common.limits``; this module applies them where uvicorn accepts a connection.

Why the TLS handshake here rather than uvicorn's ``ssl_certfile``: there asyncio does the
handshake before any protocol of ours sees the connection, with no cap on how many are pending
and a 60 s timeout, so a flood of connections that never finish it holds memory without bound
(8,076 of them took a face server from 137 MB to 2.6 GB). Here a pending handshake holds a seat
like any connection: the per-address rate is taken before it, it is shed first when the server
is full, and it ends at ``header_timeout_s``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from track2_voice.common.limits import RefusalLog, ServerLimits, Waiting, address_key
from track2_voice.common.web.guard import BUSY_RESPONSE, Guard, tls_context

# a graceful TLS close (after a response) waits this long at most for the peer's close_notify
# (asyncio's default is 30 s, during which the connection holds its seat)
TLS_SHUTDOWN_TIMEOUT_S = 2.0
_HANDSHAKE_FAILED = (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError, RuntimeError)


def _drop(transport: Any) -> None:
    """Close a connection we owe nothing: a TLS one at once (``abort``), since a graceful TLS
    close waits for the peer's close_notify, which a slow client never sends, and the
    connection would hold its seat until the shutdown timeout."""
    if transport.get_extra_info("sslcontext") is not None:
        transport.abort()
    else:
        transport.close()


def _host(transport: Any) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class GuardedProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """One connection. A subclass per server carries its ``Guard`` (``guarded_protocol``)."""

    guard: Guard
    table: Waiting  # the guard's waiting connections (the server's ``stop`` closes them)
    _refused = False  # refused before uvicorn saw it: uvicorn's side never started
    _dropping = False  # refused after: ignore what else arrives
    _deadline: asyncio.TimerHandle | None = None
    _key = ""
    _raw: Any = None  # the TCP transport under a TLS handshake in progress
    _early: list[bytes] | None = None  # what TLS delivered before uvicorn's side started
    _eof = False
    _header_bytes = 0
    _headers_in = False
    _tail = b""

    # -- a new connection: rate, seat, then (TLS) the handshake --------------------------------
    def connection_made(self, transport: Any) -> None:
        host = _host(transport)
        if not self._admit(transport, host):
            return
        if self.guard.tls is None:
            super().connection_made(transport)
            self._arm()
            return
        # reading waits until the handshake starts, so no byte reaches uvicorn unencrypted
        transport.pause_reading()
        self._raw, self._early = transport, []
        self.guard.waiting.handshaking.add(self)
        self._arm()  # one deadline for the handshake and the headers
        self.loop.create_task(self._handshake(transport))

    def _admit(self, transport: Any, host: str) -> bool:
        """Whether this connection gets a seat: within its address's rate, and with room (a
        slow connection of its address, or of any when the server is full, is shed for it)."""
        g, limits = self.guard, self.guard.limits
        if host and not g.rate.allow(host):
            what = f"over {limits.per_ip_rate:g} connections/s from one address"
            return self._refuse(transport, g.too_fast, what, host)
        self._key = address_key(host) if host else ""
        freed = self._shed_own_slowest(host)  # a shed one counts as open until it is closed
        open_now = len(self.server_state.connections) + len(g.waiting.handshaking) - freed
        if open_now >= limits.max_connections:
            if not g.waiting.shed_oldest():
                what = f"{limits.max_connections} connections open"
                return self._refuse(transport, BUSY_RESPONSE, what, host)
            g.refused("full; shed the oldest slow connection")
        return True

    def _shed_own_slowest(self, host: str) -> int:
        """1 when this address held its most waiting connections and its oldest was shed."""
        g, most = self.guard, self.guard.limits.max_waiting_per_address
        if g.waiting.count(self._key) < most or not g.waiting.shed_oldest(self._key):
            return 0
        g.refused(f"shed the oldest of {most} slow connections from one address", host)
        return 1

    def _refuse(self, transport: Any, response: bytes, what: str, host: str) -> bool:
        self._refused = True
        self.guard.refused(what, host)
        if self.guard.tls is None:  # before a TLS handshake the client could not read it
            transport.write(response)
        transport.close()
        return False

    async def _handshake(self, raw: Any) -> None:
        limits = self.guard.limits
        try:
            secure = await self.loop.start_tls(
                raw,
                self,
                self.guard.tls,
                server_side=True,
                ssl_handshake_timeout=limits.header_timeout_s + 1.0,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
            )
        except _HANDSHAKE_FAILED:
            secure = None  # a failed, shed or timed-out handshake
        finally:
            self.guard.waiting.handshaking.discard(self)
        if secure is None or self._raw is None:
            self._raw = None
            self._disarm()
            if secure is not None:
                secure.abort()
            return
        self._handshake_done(secure)

    def _handshake_done(self, secure: Any) -> None:
        """uvicorn's side starts on the secure transport, with what arrived meanwhile."""
        self._raw = None
        early, self._early = self._early or [], None
        super().connection_made(secure)
        for data in early:
            self.data_received(data)
        if self._eof:
            self.eof_received()

    def shed(self) -> None:
        """Close this waiting connection to make room (``Waiting.shed_oldest``)."""
        self._disarm()
        if self._raw is not None:
            raw, self._raw = self._raw, None
            raw.abort()
            return
        transport = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            _drop(transport)

    # -- what arrives ----------------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused or self._early is not None:
            self._raw = None  # uvicorn's side never started
            return
        super().connection_lost(exc)

    def eof_received(self) -> Any:
        if self._early is not None:
            self._eof = True
            return None
        return super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._refused or self._dropping:
            return
        if self._early is not None:
            self._early.append(data)
            return
        if self._deadline is not None and not self._headers_in and self._too_large(data):
            self._refuse_headers()
            return
        super().data_received(data)
        cycle = getattr(self, "cycle", None)
        if (cycle is not None and not cycle.response_complete) or (
            self.transport.get_protocol() is not self
        ):
            self._disarm()  # the headers are in: the app has the request (or the socket)

    def _too_large(self, data: bytes) -> bool:
        """Whether the request line and headers run past ``max_header_bytes``, however they
        arrive (uvicorn's h11 limit only counts what is still incomplete after a read, so
        100 KB of headers in one read passed it)."""
        most = self.guard.limits.max_header_bytes
        buf = self._tail + data
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            self._headers_in = True
            return self._header_bytes - len(self._tail) + end + 4 > most
        self._header_bytes += len(data)
        self._tail = buf[-3:]
        return self._header_bytes > most

    def _refuse_headers(self) -> None:
        self._dropping = True
        self._disarm()
        self.guard.refused(f"headers over {self.guard.limits.max_header_bytes} bytes")
        self.transport.write(self.guard.too_large)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = getattr(self, "cycle", None)
        if cycle is None or cycle.response_complete:  # not a pipelined request already
            self._arm()  # the next request's headers get the same deadline

    # -- the deadline for a request's headers (and a TLS handshake) -----------------------------
    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.guard.limits.header_timeout_s, self._expire)
        self._header_bytes, self._headers_in, self._tail = 0, False, b""
        self.guard.waiting.add(self, self._key)

    def _disarm(self) -> None:
        self.guard.waiting.remove(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        self.guard.waiting.remove(self)
        timeout = self.guard.limits.header_timeout_s
        if self._raw is not None:
            self.guard.refused(f"TLS handshake not done in {timeout:g} s")
            raw, self._raw = self._raw, None
            raw.abort()
            return
        if self._awaits_headers():
            self.guard.refused(f"headers not complete in {timeout:g} s")
            _drop(self.transport)

    def _awaits_headers(self) -> bool:
        """Still this protocol's, open, and with no request in progress."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if transport.get_protocol() is not self:
            return False  # upgraded to a WebSocket: its own protocol owns it now
        cycle = getattr(self, "cycle", None)
        return cycle is None or cycle.response_complete


def guarded_protocol(
    limits: ServerLimits, name: str, refusals: RefusalLog, tls: ssl.SSLContext | None = None
) -> type[GuardedProtocol]:
    """The protocol class for one server (uvicorn's ``http`` option takes a class)."""
    guard = Guard.of(limits, name, refusals, tls)
    attrs = {"guard": guard, "table": guard.waiting}
    return type(f"Guarded{AutoHTTPProtocol.__name__}", (GuardedProtocol,), attrs)


def uvicorn_options(
    limits: ServerLimits,
    name: str,
    refusals: RefusalLog,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> dict[str, Any]:
    """The uvicorn settings that carry ``limits``; with a certificate the guarded protocol does
    TLS itself (uvicorn's own ``ssl_*`` options are cleared so it does not do it twice), and
    uvicorn's ``limit_concurrency`` is off: the cap here sheds slow connections before it
    refuses, where uvicorn's counts them against a request that already arrived."""
    return {
        "http": guarded_protocol(limits, name, refusals, tls_context(ssl_certfile, ssl_keyfile)),
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "limit_concurrency": None,
        "ws_max_size": limits.ws_max_message_bytes,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": limits.keep_alive_s,
    }
