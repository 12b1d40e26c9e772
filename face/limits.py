"""What every endpoint the creature serves will accept: connections, header time, message size.

Why a protocol of our own: uvicorn caps WebSocket messages (``ws_max_size``) and header size
(``h11_max_incomplete_event_size``), but it neither caps open connections (its
``limit_concurrency`` answers 503 only once a request is complete, so half-sent requests still
hold their file handles) nor times out a request whose headers never finish. ``guarded_protocol``
wraps uvicorn's HTTP protocol with both, and every refusal goes to one rate-limited log line with
a count, so an attack cannot turn into a flood of log lines either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)
REFUSAL_LOG_INTERVAL_S = 10.0
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: 23\r\nconnection: close\r\n\r\ntoo many connections\r\n\r\n"
)


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


def guarded_protocol(limits: ServerLimits, name: str, refusals: RefusalLog) -> type:
    """uvicorn's HTTP protocol with a connection cap and a header-read deadline."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class Guarded(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _refused = False
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            if len(self.server_state.connections) >= limits.max_connections:
                self._refused = True
                peer = transport.get_extra_info("peername")
                refusals.refused(
                    f"{name}: {limits.max_connections} connections open", str(peer and peer[0])
                )
                transport.write(BUSY_RESPONSE)
                transport.close()
                return
            super().connection_made(transport)
            self._arm()

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
