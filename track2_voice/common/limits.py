"""What every endpoint the creature serves will accept: connections (in all and per address and
second), header time, message size.

Why a protocol of our own: uvicorn caps WebSocket messages (``ws_max_size``) and header size
(``h11_max_incomplete_event_size``), but it neither caps open connections (its
``limit_concurrency`` answers 503 only once a request is complete, so half-sent requests still
hold their file handles) nor times out a request whose headers never finish, nor limits how fast
one address opens connections. The guarded protocol (``track2_voice.common.web.guarded``) adds
all three where uvicorn accepts a connection, with the tables kept here; every refusal goes to
one rate-limited log line with a count, so an attack cannot turn into a flood of log lines
either.

Why a token bucket of our own for the per-address rate: the rate limiters for starlette
(slowapi, asgi-ratelimit) count requests once the app has them, i.e. after the headers, so a
flood of half-open connections never reaches them; the general ones (``limits``,
``token-bucket``) keep one entry per key with no cap on how many keys (an attacker with many
addresses grows the table) or with a timer thread to expire them. The check needs ~30 lines at
the point where uvicorn accepts a connection, with a table that has a hard size.
"""

from __future__ import annotations

import ipaddress
import logging
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
