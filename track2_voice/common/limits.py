"""What every endpoint the creature serves will accept: connections (in all and per address and
second), header time, message size.

Why a protocol of our own: uvicorn caps WebSocket messages (``ws_max_size``) and header size
(``h11_max_incomplete_event_size``), but it neither caps open connections (its
``limit_concurrency`` answers 503 only once a request is complete, so half-sent requests still
hold their file handles) nor times out a request whose headers never finish, nor limits how fast
one address opens connections. ``guarded_protocol`` wraps uvicorn's HTTP protocol with all three,
and every refusal goes to one rate-limited log line with a count, so an attack cannot turn into a
flood of log lines either.

Why a token bucket of our own for the per-address rate: the rate limiters for starlette
(slowapi, asgi-ratelimit) count requests once the app has them, i.e. after the headers, so a
flood of half-open connections never reaches them; the general ones (``limits``,
``token-bucket``) keep one entry per key with no cap on how many keys (an attacker with many
addresses grows the table) or with a timer thread to expire them. The check needs ~30 lines at
the point where uvicorn accepts a connection, with a table that has a hard size.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from track2_voice.common.settings import Strict

log = logging.getLogger(__name__)
REFUSAL_LOG_INTERVAL_S = 10.0
# addresses whose buckets are kept at once (~150 bytes each); beyond it the least recently seen
# one is forgotten (it starts again with a full bucket: the connection cap still holds)
MAX_TRACKED_ADDRESSES = 4096
IPV6_PREFIX = 64  # one IPv6 host usually holds a whole /64: it counts as one address
# a connection without its request for this long is slow, and may be shed for a newcomer
SHED_GRACE_S = 1.0
# ...and a TLS handshake not done this long after the connection, when the server is full (a
# flood of connections that never send a ClientHello from many addresses)
HANDSHAKE_GRACE_S = 0.25
# a graceful TLS close (after a response) waits this long at most for the peer's close_notify
# (asyncio's default is 30 s, during which the connection holds its seat)
TLS_SHUTDOWN_TIMEOUT_S = 2.0


def plain_response(status: str, text: str, headers: str = "") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, written before any request."""
    body = f"{text}\r\n".encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\n{headers}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


BUSY_RESPONSE = plain_response("503 Service Unavailable", "too many connections")


class ServerLimits(Strict):
    """Per server (the face server, the robot channel); the defaults are safe on a LAN."""

    max_connections: int = Field(
        64, ge=1, description="open connections (HTTP and WebSocket); more are refused with 503"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="a request whose headers are not complete by then is closed"
    )
    max_header_bytes: int = Field(
        16384, ge=1024, description="request line and headers, however they arrive (more: 431)"
    )
    ws_max_message_bytes: int = Field(
        65536, ge=1024, description="largest WebSocket message accepted (larger: close 1009)"
    )
    keep_alive_s: float = Field(5.0, gt=0, description="idle keep-alive connections close")
    per_ip_rate: float = Field(
        20.0,
        ge=0,
        description="new connections per second from one address (IPv6: one /64), on average; "
        "more are refused with 429; 0 = no per-address limit (behind a reverse proxy, where "
        "every client has the proxy's address)",
    )
    per_ip_burst: int = Field(
        40, ge=1, description="connections one address may open at once before per_ip_rate holds"
    )
    max_waiting_per_address: int = Field(
        8,
        ge=1,
        description="connections from one address that hold no request yet (TLS handshake or "
        "headers unfinished, idle keep-alive); one more closes its oldest (a browser opens 6)",
    )


@dataclass
class RefusalLog:
    """One WARNING per kind of refusal per ``interval_s``, carrying how many were refused since
    the last line; the totals stay readable in ``counts`` (``/healthz`` shows them)."""

    interval_s: float = REFUSAL_LOG_INTERVAL_S
    counts: dict[str, int] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)
    _since: dict[str, int] = field(default_factory=dict)

    def refused(self, what: str, detail: str = "") -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        self._since[what] = self._since.get(what, 0) + 1
        now = time.monotonic()
        if now - self._last.get(what, -1e9) < self.interval_s:
            return
        n, self._since[what] = self._since[what], 0
        self._last[what] = now
        more = f" ({n} refused in the last {self.interval_s:g} s)" if n > 1 else ""
        log.warning("refused: %s%s%s", what, f" [{detail}]" if detail else "", more)


def address_key(host: str) -> str:
    """What one client is, for the per-address rate: the IPv4 address (an IPv4-mapped IPv6 one
    too), the /64 of an IPv6 address; anything else (a Unix socket's name) as it is."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class ConnectionRate:
    """A token bucket per address: ``burst`` connections at once, then ``rate`` per second.

    The table is ordered by when an address was last seen. An address idle for ``burst / rate``
    seconds has a full bucket again, the same as one never seen, so it is forgotten; and the
    table never holds more than ``max_addresses`` (the least recently seen go first), so many
    addresses cannot grow memory without bound. Runs on the server's event loop only."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_addresses, self.clock = rate, burst, max_addresses, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, host: str) -> bool:
        """Take one token for ``host``; False when its bucket is empty (the connection is
        refused; a refused attempt costs nothing, so a client that backs off gets back in)."""
        if self.rate <= 0:
            return True
        key, now = address_key(host), self.clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        self._forget(now)
        return allowed

    def _forget(self, now: float) -> None:
        refill_s = self.burst / self.rate
        while self._buckets:
            _, (_, at) = next(iter(self._buckets.items()))
            if len(self._buckets) <= self.max_addresses and now - at < refill_s:
                return
            self._buckets.popitem(last=False)


class Waiting:
    """The connections of one server that hold a seat without a request in progress: the TLS
    handshake or the request's headers not done yet, or idle between keep-alive requests. They
    are what a slow or half-open client holds, so they are shed first, oldest first: one address
    keeps at most ``per_address`` of them (its oldest goes when it opens another) and a full
    server closes the oldest of all to seat a newcomer. Only one that has waited ``grace_s`` is
    slow: a page that opens its connections at once must not lose the first ones to the last
    before the server has read any of them (unless its address holds more than its share of a
    full server, or it is a TLS handshake not done after ``HANDSHAKE_GRACE_S``). A connection
    whose request is complete (a WebSocket, a request being answered) is never shed. Runs on the server's event loop."""

    def __init__(
        self,
        per_address: int,
        grace_s: float = SHED_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_address, self.grace_s, self.clock = per_address, grace_s, clock
        self._by_conn: OrderedDict[Any, tuple[str, float]] = OrderedDict()  # -> key, since
        self._per_key: dict[str, int] = {}
        self.handshaking: set[Any] = set()  # TLS handshakes in progress (not yet uvicorn's)
        self.shed = 0

    def __len__(self) -> int:
        return len(self._by_conn)

    def add(self, conn: Any, key: str) -> None:
        self.remove(conn)
        self._by_conn[conn] = (key, self.clock())
        self._per_key[key] = self._per_key.get(key, 0) + 1

    def remove(self, conn: Any) -> None:
        key, _ = self._by_conn.pop(conn, (None, 0.0))
        if key is not None:
            left = self._per_key[key] - 1
            if left:
                self._per_key[key] = left
            else:
                del self._per_key[key]

    def count(self, key: str) -> int:
        return self._per_key.get(key, 0)

    def shed_oldest(self, key: str | None = None) -> bool:
        """Close the oldest waiting connection (of ``key``, if given) that has waited at least
        ``grace_s``; False when there is none."""
        too_new = self.clock() - self.grace_s
        for conn, (k, since) in self._by_conn.items():
            if since > too_new:
                break  # oldest first: the rest are newer still
            if key is None or k == key:
                return self._shed(conn)
        if key is None and self._per_key:  # none slow yet: one address over its share goes
            hog = max(self._per_key, key=self._per_key.__getitem__)
            if self._per_key[hog] > self.per_address:
                return self._shed(next(c for c, (k, _) in self._by_conn.items() if k == hog))
        if key is None:  # a full server: a TLS handshake takes a round trip or two, not more
            too_new = self.clock() - HANDSHAKE_GRACE_S
            for conn, (_, since) in self._by_conn.items():
                if since > too_new:
                    break
                if conn in self.handshaking:
                    return self._shed(conn)
        return False

    def _shed(self, conn: Any) -> bool:
        self.remove(conn)
        self.shed += 1
        conn.shed()
        return True

    def close_all(self) -> None:
        """The server stops: drop every handshake that has not finished (uvicorn closes the
        connections it knows itself)."""
        for conn in list(self.handshaking):
            conn.shed()


def _drop(transport: Any) -> None:
    """Close a connection we owe nothing: a TLS one at once (``abort``), since a graceful TLS
    close waits for the peer's close_notify, which a slow client never sends, and the
    connection would hold its seat until the shutdown timeout."""
    if transport.get_extra_info("sslcontext") is not None:
        transport.abort()
    else:
        transport.close()


def guarded_protocol(
    limits: ServerLimits, name: str, refusals: RefusalLog, tls: ssl.SSLContext | None = None
) -> type:
    """uvicorn's HTTP protocol with a connection cap, a per-address connection rate, a deadline
    and a size cap for the request's headers, slow connections shed first, and (with ``tls``)
    the TLS handshake done here, after those checks and under the same deadline.

    Why the TLS handshake here rather than uvicorn's ``ssl_certfile``: there asyncio does the
    handshake before any protocol of ours sees the connection, with no cap on how many are
    pending and a 60 s timeout, so a flood of connections that never finish it holds memory
    without bound (8,076 of them took a face server from 137 MB to 2.6 GB). Here a pending
    handshake holds a seat like any connection: the per-address rate is taken before it, it is
    shed first when the server is full, and it ends at ``header_timeout_s``."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    rate = ConnectionRate(limits.per_ip_rate, limits.per_ip_burst)
    waiting = Waiting(limits.max_waiting_per_address)
    too_fast = (
        plain_response(
            "429 Too Many Requests",
            "too many connections from your address",
            f"retry-after: {math.ceil(1 / limits.per_ip_rate)}\r\n",
        )
        if limits.per_ip_rate > 0
        else b""
    )
    too_large = plain_response(
        "431 Request Header Fields Too Large",
        f"request line and headers over {limits.max_header_bytes} bytes",
    )

    class Guarded(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        table = waiting
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

        def connection_made(self, transport: Any) -> None:
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if host and not rate.allow(host):
                what = f"{name}: over {limits.per_ip_rate:g} connections/s from one address"
                self._refuse(transport, too_fast, what, host)
                return
            self._key = address_key(host) if host else ""
            freed = 0  # a shed connection counts as open until its close is processed
            if waiting.count(self._key) >= limits.max_waiting_per_address:
                freed = int(waiting.shed_oldest(self._key))
                if freed:
                    refusals.refused(
                        f"{name}: shed the oldest of {limits.max_waiting_per_address} slow "
                        "connections from one address",
                        host,
                    )
            open_now = len(self.server_state.connections) + len(waiting.handshaking) - freed
            if open_now >= limits.max_connections:
                if not waiting.shed_oldest():
                    what = f"{name}: {limits.max_connections} connections open"
                    self._refuse(transport, BUSY_RESPONSE, what, host)
                    return
                refusals.refused(f"{name}: full; shed the oldest slow connection")
            if tls is None:
                super().connection_made(transport)
                self._arm()
                return
            # reading waits until the handshake starts, so no byte reaches uvicorn unencrypted
            transport.pause_reading()
            self._raw, self._early = transport, []
            waiting.handshaking.add(self)
            self._arm()  # one deadline for the handshake and the headers
            self.loop.create_task(self._handshake(transport))

        async def _handshake(self, raw: Any) -> None:
            try:
                secure = await self.loop.start_tls(
                    raw,
                    self,
                    tls,
                    server_side=True,
                    ssl_handshake_timeout=limits.header_timeout_s + 1.0,
                    ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
                )
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError, RuntimeError):
                secure = None  # a failed, shed or timed-out handshake
            finally:
                waiting.handshaking.discard(self)
            if secure is None or self._raw is None:
                self._raw = None
                self._disarm()
                if secure is not None:
                    secure.abort()
                return
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

        def _refuse(self, transport: Any, response: bytes, what: str, host: str) -> None:
            self._refused = True
            refusals.refused(what, host)
            if tls is None:  # before a TLS handshake the client could not read it
                transport.write(response)
            transport.close()

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
                self._dropping = True
                self._disarm()
                refusals.refused(f"{name}: headers over {limits.max_header_bytes} bytes")
                self.transport.write(too_large)
                self.transport.close()
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
            buf = self._tail + data
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                self._headers_in = True
                return self._header_bytes - len(self._tail) + end + 4 > limits.max_header_bytes
            self._header_bytes += len(data)
            self._tail = buf[-3:]
            return self._header_bytes > limits.max_header_bytes

        def on_response_complete(self) -> None:
            super().on_response_complete()
            cycle = getattr(self, "cycle", None)
            if cycle is None or cycle.response_complete:  # not a pipelined request already
                self._arm()  # the next request's headers get the same deadline

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.header_timeout_s, self._expire)
            self._header_bytes, self._headers_in, self._tail = 0, False, b""
            waiting.add(self, self._key)

        def _disarm(self) -> None:
            waiting.remove(self)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            waiting.remove(self)
            if self._raw is not None:
                refusals.refused(f"{name}: TLS handshake not done in {limits.header_timeout_s:g} s")
                raw, self._raw = self._raw, None
                raw.abort()
                return
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if transport.get_protocol() is not self:
                return  # upgraded to a WebSocket: its own protocol owns it now
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                return
            refusals.refused(f"{name}: headers not complete in {limits.header_timeout_s:g} s")
            _drop(transport)

    Guarded.__name__ = f"Guarded{AutoHTTPProtocol.__name__}"
    return Guarded


def tls_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """A server's TLS context (None without a certificate)."""
    if not certfile:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


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
