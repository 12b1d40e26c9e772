"""The phone's ears and voice: a WebSocket that takes the page's mic and sends the creature's frames.

Why this shape: face/ must not know the voice loop, so the endpoint is given a callback
(``on_audio(pcm)``, 24 kHz mono float32) and offers ``send_frame(...)``, callable from the fast
loop's side on any thread without ever blocking it. Each page has a bounded drop-oldest queue and
its own sender task, so a slow phone only ever delays itself. One page at a time is the mic: a
newer page takes over (the older one is told why and stops retrying), which is what a user who
reopens the link expects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from face.phone.audio_protocol import AudioMessageError, decode_mic, encode_bot_frame
from track2_voice.common.limits import RefusalLog
from track2_voice.common.web import CloseCode, Mailbox, token_ok

log = logging.getLogger(__name__)

WS_AUDIO_PATH = "/ws/audio"
CONFIG_PATH = "/phone-config.json"
SEND_TIMEOUT_S = 5.0  # a phone whose socket takes nothing for this long is closed
MAX_ERRORS_REPORTED = 5  # per page, so a broken page cannot flood the log


class _Phone:
    __slots__ = ("ws", "out", "received", "errors", "task")

    def __init__(self, ws: WebSocket, maxlen: int) -> None:
        self.ws = ws
        self.out = Mailbox(maxlen)
        self.received = 0
        self.errors = 0
        self.task: asyncio.Task | None = None


class PhoneAudio:
    """Routes ``/ws/audio`` and ``/phone-config.json``; mount them with ``routes()``."""

    def __init__(
        self,
        on_audio: Callable[[np.ndarray], None] | None,
        token: str | None = None,
        enabled: bool = True,
        send_queue_frames: int = 25,
        page_config: dict[str, Any] | None = None,
    ) -> None:
        self.on_audio = on_audio
        self.token = token
        self.enabled = enabled
        self.send_queue_frames = send_queue_frames
        self.page_config = {"audio": enabled, "ws_path": WS_AUDIO_PATH, **(page_config or {})}
        self._phone: _Phone | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refused = 0
        self.refusals = RefusalLog()  # one log line per interval, with a count
        self.samples_in = 0
        self.messages_in = 0
        self.bad_messages = 0
        self.frames_out = 0
        self.dropped_out = 0
        self.connections = 0

    def routes(self) -> list[BaseRoute]:
        return [
            Route(CONFIG_PATH, self._config),
            WebSocketRoute(WS_AUDIO_PATH, self._ws),
        ]

    # -- the voice side (any thread) ------------------------------------------------------
    def send_frame(self, index: int, t: float, mouth: float, pcm: np.ndarray) -> None:
        """Queue one frame of the creature's voice for the page; never blocks."""
        phone, loop = self._phone, self._loop
        if phone is None or loop is None:
            return
        data = encode_bot_frame(index, t, mouth, pcm)
        try:
            loop.call_soon_threadsafe(self._offer, phone, data)
        except RuntimeError:  # the server's loop is closing
            pass

    def _offer(self, phone: _Phone, data: bytes) -> None:
        if phone is self._phone:
            phone.out.offer(data)

    @property
    def connected(self) -> bool:
        return self._phone is not None

    def stats(self) -> dict[str, Any]:
        p = self._phone
        return {
            "connected": p is not None,
            "connections": self.connections,
            "refused": self.refused,
            "messages_in": self.messages_in,
            "samples_in": self.samples_in,
            "bad_messages": self.bad_messages,
            "frames_out": self.frames_out + (p.out.sent if p else 0),
            "dropped_out": self.dropped_out + (p.out.dropped if p else 0),
        }

    # -- HTTP / WebSocket -----------------------------------------------------------------
    async def _config(self, request: Request) -> Response:
        return JSONResponse(self.page_config, headers={"Cache-Control": "no-cache"})

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()  # accept, then close with a code the page can show to the user
        if not token_ok(ws.query_params.get("token"), self.token):
            self.refused += 1
            self.refusals.refused("phone audio: bad or missing token", _peer(ws))
            await ws.close(code=CloseCode.UNAUTHORIZED, reason="bad or missing access token")
            return
        if not self.enabled:
            await ws.close(code=CloseCode.AUDIO_OFF, reason="phone audio is off on this creature")
            return
        self._loop = asyncio.get_running_loop()
        phone = _Phone(ws, self.send_queue_frames)
        old, self._phone = self._phone, phone
        self.connections += 1
        if old is not None:
            await self._retire(old, CloseCode.REPLACED, "another page took over the audio")
        log.info("phone audio: %s connected", _peer(ws))
        phone.task = asyncio.create_task(self._sender(phone))
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                data = msg.get("bytes")
                if data is None:
                    continue  # text messages are reserved for page -> server notes
                self._on_message(phone, data)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if self._phone is phone:
                self._phone = None
                self._account(phone)
            if phone.task is not None:
                phone.task.cancel()
            log.info("phone audio: %s disconnected", _peer(ws))

    def _on_message(self, phone: _Phone, data: bytes) -> None:
        try:
            _seq, pcm = decode_mic(data)
        except AudioMessageError as e:
            self.bad_messages += 1
            phone.errors += 1
            if phone.errors <= MAX_ERRORS_REPORTED:
                log.warning("phone audio: %s sent a bad message: %s", _peer(phone.ws), e)
                asyncio.ensure_future(_send_error(phone.ws, str(e)))
            return
        if phone is not self._phone:
            return
        self.messages_in += 1
        self.samples_in += pcm.size
        phone.received += pcm.size
        if self.on_audio is not None and pcm.size:
            try:
                self.on_audio(pcm)
            except Exception:  # the consumer's fault must not end the page's session
                log.exception("phone audio: on_audio failed")

    async def _sender(self, phone: _Phone) -> None:
        try:
            await phone.out.send_all(phone.ws.send_bytes, SEND_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("phone audio: page stalled for %.1f s: closing it", SEND_TIMEOUT_S)
            await self._retire(phone, CloseCode.STALLED, "stalled")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a broken socket ends this page only
            log.debug("phone audio: send failed: %s", e)

    async def _retire(self, phone: _Phone, code: int, reason: str) -> None:
        if self._phone is phone:
            self._phone = None
        self._account(phone)
        if phone.task is not None:
            phone.task.cancel()
        try:
            await asyncio.wait_for(phone.ws.close(code=code, reason=reason), 1.0)
        except Exception:
            pass

    def _account(self, phone: _Phone) -> None:
        self.frames_out += phone.out.sent
        self.dropped_out += phone.out.dropped
        phone.out.sent = phone.out.dropped = 0


async def _send_error(ws: WebSocket, text: str) -> None:
    try:
        await ws.send_text(json.dumps({"error": text}))
    except Exception:
        pass


def _peer(ws: WebSocket) -> str:
    c = ws.client
    return f"{c.host}:{c.port}" if c else "a page"
