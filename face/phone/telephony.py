"""The telephone bridge: a Twilio Media Streams WebSocket and the TwiML webhook that opens it.

A call is the creature's ears and voice the way the phone page is: the caller's mu-law audio
becomes 24 kHz float samples for ``on_audio`` (the fast loop's clock), and each frame the
creature says goes back paced at real time (``telephone_call``).

Why it lives in face/: it is transport, like the phone page's socket. It knows nothing of the
voice loop or the bus: it gets ``on_audio`` and a :class:`CallObserver`, and offers
``send_frame`` and ``clear`` (both on the I/O loop).

Who may call (``caller_check``): the webhook needs a carrier's signature or the creature's
token. The stream needs the creature's token on its upgrade request, or in the ``token`` custom
parameter of ``start`` either the single-use ticket the served TwiML carries
(``stream_tickets``: the signature of a stream's upgrade covers only its URL, the same for every
call, so it alone could be replayed) or the token itself. A signature on the upgrade is checked
at once (a wrong one is refused before the socket opens) and gives the stream a seat apart from
strangers' (``stream_seats``). Anything else is refused, logged (rate-limited) and reported.

Bad input: the webhook's body is read against its cap as it arrives (a declared
Content-Length over it is refused before reading); every frame the parser cannot take is a
malformed message: before ``start`` the stream is closed (4400), during a call it is answered,
counted and the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from face.phone.call_observer import CallObserver, Quiet
from face.phone.caller_check import SIGNATURE_HEADER, CallerCheck
from face.phone.stream_io import NoStart, close, peer_of, read_start, receive_text, send_error
from face.phone.stream_seats import Seat, StreamSeats
from face.phone.stream_tickets import StreamTickets
from face.phone.telephone_audio import TelephoneAudio
from face.phone.telephone_call import Call
from face.phone.telephony_config import TelephonyConfig
from face.phone.twilio_protocol import (
    DtmfMsg,
    StartMsg,
    StopMsg,
    StreamMessageError,
    check_format,
    parse,
)
from face.phone.twiml import busy_twiml, stream_twiml
from track2_voice.common.limits import RefusalLog
from track2_voice.common.web import AppServer, CloseCode, Mailbox, OriginGate
from track2_voice.common.web.bodies import read_bounded

log = logging.getLogger(__name__)

TWIML_PATH = "/telephony/twiml"
STREAM_PATH = "/telephony/stream"
TOKEN_PARAMETER = "token"  # the custom parameter of <Stream> that carries the stream's ticket
MAX_ERRORS_REPORTED = 5  # per call, so a broken peer cannot flood the log
MAX_FORM_BYTES = 16_384


class TelephonyBridge:
    """Routes ``/telephony/twiml`` and ``/telephony/stream``; mount them with ``routes()``."""

    def __init__(
        self,
        cfg: TelephonyConfig,
        token: str,
        on_audio: Callable[[np.ndarray], None] | None,
        observer: CallObserver | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.cfg = cfg
        self.token = token
        self.on_audio = on_audio
        self.observer: CallObserver = observer or Quiet()
        self.check = CallerCheck(cfg, token)
        self.call: Call | None = None
        self.refusals = refusals or RefusalLog()
        self.tickets = StreamTickets(cfg.ticket_ttl_s)
        self.seats = StreamSeats(
            cfg.max_credentialed_pending,
            cfg.max_unauthenticated,
            cfg.max_unauthenticated_per_address,
        )
        self.calls = 0
        self.refused = 0
        self.bad_messages = 0

    @property
    def auth_token(self) -> str | None:
        """The carrier account's token (None: only the creature's token opens the bridge)."""
        return self.check.auth_token

    def routes(self) -> list[BaseRoute]:
        return [
            Route(TWIML_PATH, self._twiml, methods=["GET", "POST"]),
            WebSocketRoute(STREAM_PATH, self._stream),
        ]

    def _refuse(self, where: str, peer: str, reason: str, report: bool = True) -> None:
        """Counted, logged at most once per 10 s per kind (an attack cannot flood the log) and,
        for a wrong or missing credential, reported (a record event)."""
        self.refused += 1
        self.refusals.refused(f"telephony {where}: {reason}", peer)
        if report:
            self.observer.refused(where, peer, reason)

    # -- the webhook ------------------------------------------------------------------------------
    async def _twiml(self, request: Request) -> Response:
        body = await read_bounded(request, MAX_FORM_BYTES)
        if isinstance(body, Response):
            self._refuse("webhook", peer_of(request), "body too large or malformed", report=False)
            return body
        params: dict[str, str] = {}
        if request.method == "POST" and body:  # Twilio posts application/x-www-form-urlencoded
            try:
                params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                return PlainTextResponse("the form is not UTF-8\n", status_code=400)
        url = self.check.public_url(request.scope, request.headers, websocket=False)
        via, why = self.check.webhook_credential(url, params, request.query_params, request.headers)
        if via is None:
            self._refuse("webhook", peer_of(request), why)
            return PlainTextResponse(f"{why}\n", status_code=403)
        call_sid = params.get("CallSid") or request.query_params.get("CallSid") or ""  # POST, GET
        return Response(self.twiml(url, call_sid), media_type="application/xml")

    def twiml(self, webhook_url: str, call_sid: str = "") -> str:
        """``<Connect><Stream>`` to this bridge with a fresh single-use ticket for the call
        ``call_sid`` (``<Reject reason="busy">`` during a call)."""
        if self.call is not None:
            return busy_twiml()
        base = webhook_url.split("?", 1)[0][: -len(TWIML_PATH)]
        stream_url = "ws" + base[4:] + STREAM_PATH if base.startswith("http") else base
        return stream_twiml(stream_url, TOKEN_PARAMETER, self.tickets.issue(call_sid))

    def webhook_url(self, base: str) -> str:
        """The URL to give the carrier for incoming calls, with the creature's token (for
        carriers that do not sign; Twilio's signature covers it too)."""
        return f"{base}{TWIML_PATH}?{urlencode({'token': self.token})}"

    # -- the stream -------------------------------------------------------------------------------
    async def _stream(self, ws: WebSocket) -> None:
        peer = peer_of(ws)
        url = self.check.public_url(ws.scope, ws.headers, websocket=True)
        signature = ws.headers.get(SIGNATURE_HEADER)
        credential: str | None = None
        if signature and self.check.validator is not None:
            if not self.check.signed(url, {}, signature):
                self._refuse("stream", peer, "bad X-Twilio-Signature")
                await ws.close(code=CloseCode.UNAUTHORIZED)  # before accept: HTTP 403
                return
            credential = "twilio-signature"
        elif self.check.own_token(ws.query_params, ws.headers):
            credential = "token"
        seat = self.seats.take(ws.client.host if ws.client else "", credential is not None)
        try:
            await ws.accept()
            start = await self._await_start(ws, seat, peer)
        finally:
            self.seats.release(seat)
        if start is None:
            return
        via = self.check.start_credential(
            credential, start.custom_parameters.get(TOKEN_PARAMETER), start.call_sid, self.tickets
        )
        if via is None:
            why = "a signed stream without its ticket" if credential else "no valid credential"
            self._refuse("stream", peer, why)
            await close(ws, CloseCode.UNAUTHORIZED, "bad or missing credential")
            return
        try:
            check_format(start)
        except StreamMessageError as e:
            self._refuse("stream", peer, "unsupported media format")  # one kind, not the values
            await send_error(ws, str(e))
            await close(ws, CloseCode.BAD_STREAM, "unsupported media format")
            return
        if self.call is not None:
            self._refuse("stream", peer, "already on a call")
            await close(ws, CloseCode.BUSY, "the creature is on another call")
            return
        await self._hold(ws, start, via)

    async def _await_start(self, ws: WebSocket, seat: Seat, peer: str) -> StartMsg | None:
        """The stream's ``start``, or None when it ended first (refused and closed as
        ``read_start`` says why)."""
        got = await read_start(ws, seat, self.cfg.start_timeout_s)
        if not isinstance(got, NoStart):
            return got
        self.bad_messages += got.malformed
        if got.why is not None:
            self._refuse("stream", peer, got.why, report=False)
        if got.error is not None:
            await send_error(ws, got.error)
        if got.code is not None:
            await close(ws, got.code, got.reason)
        return None

    async def _hold(self, ws: WebSocket, start: StartMsg, via: str) -> None:
        maxlen = self.cfg.send_queue_frames * 4  # four 20 ms chunks per 80 ms frame
        call = self.call = Call(ws, start, TelephoneAudio(), Mailbox(maxlen))
        self.calls += 1
        log.info(
            "telephony: call %s (stream %s) connected via %s", start.call_sid, start.stream_sid, via
        )
        self.observer.call_started(start, via)
        call.task = asyncio.create_task(call.sender(self.cfg.lead_ms / 1000.0))
        reason = "disconnected"
        try:
            while True:
                text = await receive_text(ws)
                if text is None:
                    break
                if self._on_message(call, text):
                    reason = "stop"
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if self.call is call:
                self.call = None
            if call.task is not None:
                call.task.cancel()
            log.info("telephony: call %s ended (%s): %s", start.call_sid, reason, call.stats())
            self.observer.call_ended(start, reason, call.stats())
        await close(ws, 1000, "call ended")

    def _on_message(self, call: Call, text: str) -> bool:
        """Handle one frame of a call; True when the call stops."""
        try:
            msg = parse(text)
        except StreamMessageError as e:
            self.bad_messages += 1
            call.errors += 1
            if call.errors <= MAX_ERRORS_REPORTED:
                log.warning("telephony: call %s sent a bad message: %s", call.start.call_sid, e)
                asyncio.ensure_future(send_error(call.ws, str(e)))
            return False
        if isinstance(msg, DtmfMsg):
            log.info("telephony: call %s pressed %s", call.start.call_sid, msg.digit)
            self.observer.dtmf(call.start, msg.digit)
        call.heard(msg, self.on_audio)
        return isinstance(msg, StopMsg)

    # -- the creature's voice (on the I/O loop) ------------------------------------------------
    def send_frame(self, index: int, pcm: np.ndarray) -> None:
        """Queue one 80 ms frame for the caller (four 20 ms chunks, a mark every few frames);
        never blocks: a full queue drops its oldest chunk (counted)."""
        if self.call is not None:
            self.call.queue_frame(index, pcm, self.cfg.mark_every_frames)

    async def clear(self) -> bool:
        """The creature was cut off: drop what is queued here and what the carrier buffered."""
        call = self.call
        if call is None:
            return False
        dropped_ms = await call.clear()
        if dropped_ms is None:
            return False
        self.observer.cleared(call.start, round(dropped_ms, 1), len(call.pending_marks))
        return True

    def stats(self) -> dict[str, Any]:
        call = self.call
        return {
            "on_call": call is not None,
            "calls": self.calls,
            "refused": self.refused,
            "shed": self.seats.shed,
            "waiting": len(self.seats),
            "bad_messages": self.bad_messages,
            **({"call": call.stats()} if call is not None else {}),
        }


def bridge_server(bridge: TelephonyBridge, sock: Any) -> AppServer:
    """The bridge's own server on ``sock``, with its configured limits; uvicorn believes
    X-Forwarded-* (from loopback) only with ``trust_forwarded_headers``. The carrier sends no
    Origin; a browser page (which always does) is refused."""
    cfg = bridge.cfg
    app = OriginGate(Starlette(routes=bridge.routes()), [], False, bridge.refusals.refused)
    return AppServer(
        app,
        sock,
        "telephony",
        limits=cfg.limits,
        refusals=bridge.refusals,
        ws_max_size=min(cfg.max_message_bytes, cfg.limits.ws_max_message_bytes),
        proxy_headers=cfg.trust_forwarded_headers,
    )
