"""The Twilio Media Streams messages (bidirectional ``<Connect><Stream>``), typed.

Written from Twilio's public description of the protocol: JSON text frames; from Twilio
``connected``, ``start`` (stream and call ids, custom parameters, media format), ``media``
(base64 mu-law 8 kHz mono, 20 ms a chunk), ``dtmf``, ``mark`` (a mark we sent, echoed once the
audio before it has played), ``stop``; to Twilio ``media``, ``mark`` and ``clear`` (drop the
audio Twilio has buffered; it then echoes the marks that were still pending). Other carriers'
bridges speak close variants. ``parse`` turns a frame into a message or raises
:class:`StreamMessageError` saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from track2_voice.common.errors import CreatureError
from track2_voice.common.web import clip, loads_bounded

MAX_PAYLOAD_BYTES = 8_000  # one second of mu-law in one media message is already unusual
SUPPORTED_ENCODING = "audio/x-mulaw"
SUPPORTED_RATE = 8_000
MAX_JSON_DEPTH = 8  # Twilio's deepest message (start.mediaFormat.encoding) is 3 levels


class StreamEvent(str, Enum):
    CONNECTED = "connected"
    START = "start"
    MEDIA = "media"
    MARK = "mark"
    DTMF = "dtmf"
    STOP = "stop"
    CLEAR = "clear"  # only ever sent to Twilio


class StreamMessageError(CreatureError, ValueError):
    """A frame that does not follow the Media Streams protocol (or a format we cannot play)."""


@dataclass(slots=True, frozen=True)
class ConnectedMsg:
    protocol: str
    version: str


@dataclass(slots=True, frozen=True)
class StartMsg:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class MediaMsg:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes  # mu-law bytes


@dataclass(slots=True, frozen=True)
class MarkMsg:
    stream_sid: str
    name: str


@dataclass(slots=True, frozen=True)
class DtmfMsg:
    stream_sid: str
    digit: str


@dataclass(slots=True, frozen=True)
class StopMsg:
    stream_sid: str
    call_sid: str


InboundMsg = ConnectedMsg | StartMsg | MediaMsg | MarkMsg | DtmfMsg | StopMsg


def _obj(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise StreamMessageError(f"'{d.get('event')}' message: '{key}' must be an object")
    return v


def _str(d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise StreamMessageError(f"{where}: '{key}' must be a string")
    return v


def _int(d: dict[str, Any], key: str, where: str, default: int = 0) -> int:
    v = d.get(key, default)
    try:  # Twilio sends its counters as strings ("chunk": "3")
        return int(v)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e400) is int(inf)
        raise StreamMessageError(
            f"{where}: '{key}' must be a whole number, got {clip(_repr(v))}"
        ) from None


def _repr(v: Any) -> str:
    """``repr`` for an error message, whatever the value (repr of a huge int raises)."""
    try:
        return repr(v)
    except (ValueError, RecursionError):
        return f"a {type(v).__name__}"


def parse(text: str | bytes) -> InboundMsg:
    """One text frame from the carrier -> a typed message. Any frame the parser cannot take
    (not JSON, nested too deep, a number too long to convert, a wrong shape) is a
    :class:`StreamMessageError`, never another exception: the handler answers it as malformed."""
    try:
        d = loads_bounded(text, MAX_JSON_DEPTH)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, JsonTooDeep, a 5,000-digit int
        raise StreamMessageError(f"not JSON this bridge accepts: {clip(str(e), 120)}") from None
    try:
        return _message(d)
    except StreamMessageError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as e:  # a shape not foreseen
        raise StreamMessageError(f"malformed message: {clip(str(e), 120)}") from None


def _message(d: Any) -> InboundMsg:
    if not isinstance(d, dict):
        raise StreamMessageError("a message must be a JSON object")
    name = d.get("event")
    try:
        event = StreamEvent(name)
    except ValueError:
        raise StreamMessageError(
            f"unknown event {clip(_repr(name))}; expected one of connected, start, media, mark, "
            "dtmf, stop"
        ) from None
    sid = d.get("streamSid", "")
    if not isinstance(sid, str):
        raise StreamMessageError("'streamSid' must be a string")
    return _READERS[event](d, sid)


def _connected(d: dict[str, Any], sid: str) -> ConnectedMsg:
    return ConnectedMsg(_str(d, "protocol", "connected", ""), _str(d, "version", "connected", ""))


def _start(d: dict[str, Any], sid: str) -> StartMsg:
    s = _obj(d, "start")
    fmt = _optional_obj(s, "mediaFormat")
    params = _optional_obj(s, "customParameters")
    tracks = s.get("tracks") or ["inbound"]
    if not isinstance(tracks, list):
        raise StreamMessageError("start: 'tracks' must be a list")
    return StartMsg(
        stream_sid=_str(s, "streamSid", "start", sid),
        call_sid=_str(s, "callSid", "start", ""),
        account_sid=_str(s, "accountSid", "start", ""),
        tracks=tuple(str(t) for t in tracks),
        encoding=_str(fmt, "encoding", "start.mediaFormat", SUPPORTED_ENCODING),
        sample_rate=_int(fmt, "sampleRate", "start.mediaFormat", SUPPORTED_RATE),
        channels=_int(fmt, "channels", "start.mediaFormat", 1),
        custom_parameters={str(k): str(v) for k, v in params.items()},
    )


def _optional_obj(s: dict[str, Any], key: str) -> dict[str, Any]:
    """A ``start`` field that may be missing (empty) but, when given, is an object."""
    v = s.get(key) or {}
    if not isinstance(v, dict):
        raise StreamMessageError(f"start: '{key}' must be an object")
    return v


def _media(d: dict[str, Any], sid: str) -> MediaMsg:
    m = _obj(d, "media")
    raw = _str(m, "payload", "media")
    if len(raw) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
        raise StreamMessageError(f"media: payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        payload = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise StreamMessageError("media: 'payload' is not base64") from None
    return MediaMsg(
        stream_sid=sid,
        track=_str(m, "track", "media", "inbound"),
        chunk=_int(m, "chunk", "media"),
        timestamp_ms=_int(m, "timestamp", "media"),
        payload=payload,
    )


def _mark(d: dict[str, Any], sid: str) -> MarkMsg:
    return MarkMsg(sid, _str(_obj(d, "mark"), "name", "mark"))


def _dtmf(d: dict[str, Any], sid: str) -> DtmfMsg:
    return DtmfMsg(sid, _str(_obj(d, "dtmf"), "digit", "dtmf"))


def _stop(d: dict[str, Any], sid: str) -> StopMsg:
    s = d.get("stop") if isinstance(d.get("stop"), dict) else {}
    return StopMsg(sid, _str(s, "callSid", "stop", ""))


def _clear(d: dict[str, Any], sid: str) -> InboundMsg:
    raise StreamMessageError("'clear' is sent to the carrier, never by it")


_READERS: dict[StreamEvent, Callable[[dict[str, Any], str], InboundMsg]] = {
    StreamEvent.CONNECTED: _connected,
    StreamEvent.START: _start,
    StreamEvent.MEDIA: _media,
    StreamEvent.MARK: _mark,
    StreamEvent.DTMF: _dtmf,
    StreamEvent.STOP: _stop,
    StreamEvent.CLEAR: _clear,
}


def check_format(start: StartMsg) -> None:
    """The bridge speaks mu-law 8 kHz mono only (what ``<Connect><Stream>`` delivers)."""
    if (start.encoding, start.sample_rate, start.channels) != (
        SUPPORTED_ENCODING,
        SUPPORTED_RATE,
        1,
    ):
        raise StreamMessageError(
            f"start: media format {clip(start.encoding)} {start.sample_rate} Hz "
            f"x{start.channels}; "
            f"expected {SUPPORTED_ENCODING} {SUPPORTED_RATE} Hz mono"
        )


# -- to the carrier --------------------------------------------------------------------------


def media_message(stream_sid: str, mulaw: bytes) -> str:
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
