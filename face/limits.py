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
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)
REFUSAL_LOG_INTERVAL_S = 10.0
# addresses whose buckets are kept at once (~150 bytes each); beyond it the least recently seen
# one is forgotten (it starts again with a full bucket: the connection cap still holds)
MAX_TRACKED_ADDRESSES = 4096
IPV6_PREFIX = 64  # one IPv6 host usually holds a whole /64: it counts as one address


def plain_response(status: str, text: str, headers: str = "") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, written before any request."""
    body = f"{text}\r\n".encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\n{headers}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


BUSY_RESPONSE = plain_response("503 Service Unavailable", "too many connections")


class ServerLimits(BaseModel):
    """Per server (the face server, the robot channel); the defaults are safe on a LAN."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    max_connections: int = Field(
        64, ge=1, description="open connections (HTTP and WebSocket); more are refused with 503"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="a request whose headers are not complete by then is closed"
    )
    max_header_bytes: int = Field(16384, ge=1024, description="request line and headers")
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


def guarded_protocol(limits: ServerLimits, name: str, refusals: RefusalLog) -> type:
    """uvicorn's HTTP protocol with a connection cap, a per-address connection rate and a
    header-read deadline."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    rate = ConnectionRate(limits.per_ip_rate, limits.per_ip_burst)
    too_fast = (
        plain_response(
            "429 Too Many Requests",
            "too many connections from your address",
            f"retry-after: {math.ceil(1 / limits.per_ip_rate)}\r\n",
        )
        if limits.per_ip_rate > 0
        else b""
    )

    class Guarded(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _refused = False
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if host and not rate.allow(host):
                what = f"{name}: over {limits.per_ip_rate:g} connections/s from one address"
                self._refuse(transport, too_fast, what, host)
                return
            if len(self.server_state.connections) >= limits.max_connections:
                what = f"{name}: {limits.max_connections} connections open"
                self._refuse(transport, BUSY_RESPONSE, what, host)
                return
            super().connection_made(transport)
            self._arm()

        def _refuse(self, transport: Any, response: bytes, what: str, host: str) -> None:
            self._refused = True
            refusals.refused(what, host)
            transport.write(response)
            transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if not self._refused:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                self._disarm()  # the headers are in: the app has the request now

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request's headers get the same deadline

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if transport.get_protocol() is not self:
                return  # upgraded to a WebSocket: its own protocol owns it now
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                return
            refusals.refused(f"{name}: headers not complete in {limits.header_timeout_s:g} s")
            transport.close()

    Guarded.__name__ = f"Guarded{AutoHTTPProtocol.__name__}"
    return Guarded


def uvicorn_options(limits: ServerLimits, name: str, refusals: RefusalLog) -> dict[str, Any]:
    """The uvicorn settings that carry ``limits``."""
    return {
        "http": guarded_protocol(limits, name, refusals),
        "ws_max_size": limits.ws_max_message_bytes,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": limits.keep_alive_s,
    }
