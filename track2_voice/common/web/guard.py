"""What the guarded HTTP protocol (``guarded.py``) checks each connection of one server
against: the limits, the tables every connection shares, the refusals it writes before any
request (it answers them itself, so they are plain bytes), and the server's TLS context."""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass

from track2_voice.common.limits import ConnectionRate, RefusalLog, ServerLimits, Waiting


def plain_response(status: str, text: str, headers: str = "") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, written before any request."""
    body = f"{text}\r\n".encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\n{headers}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


BUSY_RESPONSE = plain_response("503 Service Unavailable", "too many connections")


@dataclass
class Guard:
    """What every connection of one server checks against, and the tables they share."""

    limits: ServerLimits
    name: str
    refusals: RefusalLog
    tls: ssl.SSLContext | None
    rate: ConnectionRate
    waiting: Waiting
    too_fast: bytes
    too_large: bytes

    @classmethod
    def of(
        cls, limits: ServerLimits, name: str, refusals: RefusalLog, tls: ssl.SSLContext | None
    ) -> Guard:
        rate = limits.per_ip_rate
        too_fast = b""
        if rate > 0:
            too_fast = plain_response(
                "429 Too Many Requests",
                "too many connections from your address",
                f"retry-after: {math.ceil(1 / rate)}\r\n",
            )
        too_large = plain_response(
            "431 Request Header Fields Too Large",
            f"request line and headers over {limits.max_header_bytes} bytes",
        )
        return cls(
            limits,
            name,
            refusals,
            tls,
            ConnectionRate(rate, limits.per_ip_burst),
            Waiting(limits.max_waiting_per_address),
            too_fast,
            too_large,
        )

    def refused(self, what: str, detail: str = "") -> None:
        self.refusals.refused(f"{self.name}: {what}", detail)


def tls_context(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """A server's TLS context (None without a certificate)."""
    if not certfile:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx
