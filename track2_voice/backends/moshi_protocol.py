"""The Moshi wire protocol (``/api/chat``): one binary WebSocket message per item, first byte
is the kind. Shared by the remote backend, the latency harness and the benchmarks.

Handshake: Kyutai's Python servers send ``b"\\x00"``; the Rust server first sends a kind-4
metadata message (JSON) and then a 9-byte handshake ``\\x00`` + protocol version (u32 LE) +
model version (u32 LE). Audio both ways is Ogg/Opus pages at 24 kHz mono (``sphn``).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from track2_voice.backends.base import BackendError
from track2_voice.config import SamplingConfig
from track2_voice.frames import FRAME_SAMPLES
from track2_voice.redact import redact_url

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one Ogg page of 80 ms is a few hundred bytes
CLOSE_TIMEOUT_S = 1.0  # how long a closing handshake may take before we drop the socket


class Kind(IntEnum):
    HANDSHAKE = 0
    AUDIO = 1
    TEXT = 2
    CONTROL = 3
    METADATA = 4
    ERROR = 5
    PING = 6


class RemoteError(BackendError):
    """Something went wrong talking to a Moshi-protocol server; the message says what."""


class ConnectError(RemoteError):
    """The server could not be reached (refused, unknown host, TLS, HTTP instead of WS)."""


class HandshakeError(RemoteError):
    """The server answered, but not with a Moshi handshake."""


class ProtocolError(RemoteError):
    """A message broke the protocol (bad kind, bad JSON, undecodable audio)."""


def session_url(
    url: str, sampling: SamplingConfig | None = None, extra: dict[str, str] | None = None
) -> str:
    """Add Kyutai's sampling query params (as its web client sends them) to ``url``.
    Params already in the URL win; the Python servers ignore them, the Rust server uses them."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise RemoteError(f"{redact_url(url)!r}: expected a ws:// or wss:// URL")
    query: dict[str, str] = {}
    if sampling is not None:
        query.update(
            text_temperature=str(sampling.temp_text),
            text_topk=str(sampling.top_k_text),
            audio_temperature=str(sampling.temp),
            audio_topk=str(sampling.top_k),
            text_seed=str(sampling.seed),
            audio_seed=str(sampling.seed),
        )
    query.update(extra or {})
    query.update(dict(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def ssl_context(url: str, insecure: bool) -> ssl.SSLContext | None:
    """TLS for wss:// URLs; ``insecure`` accepts a self-signed certificate (lab servers)."""
    if not url.startswith("wss://"):
        return None
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def where(url: str) -> str:
    p = urlsplit(url)
    return f"{p.hostname}:{p.port or (443 if p.scheme == 'wss' else 80)}"


async def open_session(
    url: str,
    insecure: bool = False,
    connect_timeout: float = 5.0,
    handshake_timeout: float = 10.0,
):
    """Open the WebSocket and wait for the handshake. Returns ``(ws, info)``, where ``info``
    holds the Rust server's metadata and versions when it sent them. Raises a RemoteError
    subclass with a message a user can act on."""
    ws = await connect_websocket(url, insecure, connect_timeout)
    try:
        info = await wait_handshake(ws, handshake_timeout)
    except BaseException:
        await close_quietly(ws)
        raise
    return ws, info


async def connect_websocket(url: str, insecure: bool, connect_timeout: float):
    """The WebSocket upgrade alone, each way it can fail turned into a ConnectError that
    says what to check (the server, the URL, TLS, the network)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    try:
        ws = await asyncio.wait_for(
            connect(
                url,
                ssl=ssl_context(url, insecure),
                open_timeout=connect_timeout,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
                close_timeout=CLOSE_TIMEOUT_S,
            ),
            connect_timeout + 1.0,
        )
    except ConnectionRefusedError as e:
        raise ConnectError(
            f"connection refused by {where(url)}: is the Moshi server running there?"
        ) from e
    except InvalidStatus as e:
        raise ConnectError(upgrade_refused(url, e.response.status_code)) from e
    except InvalidURI as e:
        raise ConnectError(f"{redact_url(url)!r} is not a valid WebSocket URL") from e
    except ssl.SSLCertVerificationError as e:
        raise ConnectError(
            f"{where(url)}: TLS certificate not trusted ({e.verify_message}); "
            "for a self-signed certificate use --insecure (voice.remote.insecure_tls)"
        ) from e
    except ssl.SSLError as e:
        raise ConnectError(f"{where(url)}: TLS failed ({e}); is it a wss:// server?") from e
    except (TimeoutError, asyncio.TimeoutError) as e:
        raise ConnectError(f"{where(url)}: no answer within {connect_timeout:g} s") from e
    except InvalidHandshake as e:
        raise ConnectError(f"{redact_url(url)}: WebSocket upgrade failed ({e})") from e
    except OSError as e:
        raise ConnectError(f"cannot reach {where(url)}: {e.strerror or e}") from e
    return ws


def upgrade_refused(url: str, code: int) -> str:
    """What an HTTP answer to the WebSocket upgrade means for a Moshi client."""
    if code in (429, 503):
        return f"{where(url)} is busy (HTTP {code}): no free slot or queue place; try again later"
    if code == 500:
        # Ray Serve's proxy answers a WebSocket it cannot queue with a bare 500 (docs/ray_serve.md)
        return (
            f"{where(url)} answered HTTP 500 to the WebSocket upgrade: the server failed, or "
            "it is a full cluster (every slot, refusal lane and queue place taken)"
        )
    return (
        f"{redact_url(url)}: the server answered HTTP {code} instead of opening a WebSocket "
        "(is the path /api/chat?)"
    )


async def wait_handshake(ws, timeout: float) -> dict[str, Any]:
    """Read until the kind-0 handshake; accept metadata (kind 4) and pings before it."""
    from websockets.exceptions import ConnectionClosed

    info: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            msg = await asyncio.wait_for(ws.recv(), remaining)
        except (TimeoutError, asyncio.TimeoutError) as e:
            raise HandshakeError(
                f"no handshake within {timeout:g} s: the server may be busy with another "
                "session (moshi.server serves one at a time), or it is not a Moshi server"
            ) from e
        except ConnectionClosed as e:
            raise HandshakeError(
                f"the server closed the connection before its handshake ({e})"
            ) from e
        if isinstance(msg, str):
            raise HandshakeError(
                f"expected a binary handshake, got a text message {msg[:60]!r}: "
                "not a Moshi-protocol server"
            )
        if not msg:
            raise HandshakeError("expected a handshake, got an empty message")
        kind = msg[0]
        if kind == Kind.METADATA:
            info["metadata"] = parse_metadata(msg[1:])
        elif kind == Kind.PING:
            continue
        elif kind == Kind.ERROR:
            raise HandshakeError(f"the server refused the session: {decode_text(msg[1:])}")
        elif kind == Kind.HANDSHAKE:
            if len(msg) == 9:
                proto, model = struct.unpack("<II", msg[1:9])
                info.update(protocol_version=proto, model_version=model)
            elif len(msg) != 1:
                raise HandshakeError(
                    f"handshake of {len(msg)} bytes: expected 1 (Python servers) or 9 (Rust)"
                )
            return info
        else:
            raise HandshakeError(
                f"expected the handshake (kind 0) first, got a message of kind {kind}"
            )


def parse_metadata(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"metadata message (kind 4) is not JSON: {e}") from e
    return data if isinstance(data, dict) else {"value": data}


def decode_text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


async def close_quietly(ws) -> None:
    try:
        await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
    except Exception:
        pass


class PcmFramer:
    """The Opus decoder returns whatever it has; the loop wants exact 1920-sample frames."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, pcm: np.ndarray) -> list[np.ndarray]:
        if pcm.size:
            self._pending = np.concatenate([self._pending, pcm.astype(np.float32, copy=False)])
        n = self._pending.size // FRAME_SAMPLES
        if n == 0:
            return []
        out = list(self._pending[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES).copy())
        self._pending = self._pending[n * FRAME_SAMPLES :]
        return out
