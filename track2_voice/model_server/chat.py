"""Kyutai's ``/api/chat`` session, served from one of the model server's batched slots.

As ``moshi.server`` does it: accept the WebSocket, send the ``\\x00`` handshake, decode the
client's Ogg/Opus pages to 1920-sample frames, and send back one Opus page per generated frame
(kind 1) and the text piece (kind 2). Refusals are protocol messages, so every Moshi client
shows them: a kind-5 error with a one-line reason, then a close code (1013 "try again later"
when every slot is taken; 1008 for a wrong token, a foreign browser origin or a bad query
parameter). They happen before the handshake and never touch the running sessions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from track2_voice.backends.model_kind import is_end_of_passage
from track2_voice.backends.moshi_protocol import Kind, PcmFramer
from track2_voice.common.web import CloseCode, bounded
from track2_voice.frames import SAMPLE_RATE
from track2_voice.model_server.engine import SlotOutput
from track2_voice.model_server.params import ParamError, session_sampling
from track2_voice.model_server.scheduler import NoFreeSlot, Session
from track2_voice.model_server.session_io import (
    Outputs,
    Wording,
    client_messages,
    close_quietly,
    join,
    refuse,
    run_session,
)
from track2_voice.texttap import EOS_PIECE, piece_text

if TYPE_CHECKING:
    from track2_voice.model_server.server import ModelServer

log = logging.getLogger(__name__)
HANDSHAKE = bytes([Kind.HANDSHAKE])
WORDING = Wording(
    quiet="closing: nothing received for {idle:g} s",
    not_binary="expected binary messages (kind byte + payload)",
    too_big="a {size}-byte message is over {limit} bytes; closing",
)


def error_message(text: str) -> bytes:
    return bytes([Kind.ERROR]) + text.encode()


async def chat_session(server: ModelServer, ws: Any) -> None:
    """One ``/api/chat`` session on a Starlette WebSocket not yet accepted."""
    await ws.accept()
    reason = _refusal(server, ws)
    if reason is None:
        try:
            sampling = session_sampling(ws.query_params, server.session_defaults)
        except ParamError as e:
            reason = str(e)
    if reason is not None:
        return await refuse(ws, error_message(reason), reason, CloseCode.POLICY, "a session")
    try:
        session, box = join(server.scheduler, server.opts, sampling)
    except NoFreeSlot as e:
        return await refuse(ws, error_message(str(e)), str(e), CloseCode.TRY_LATER, "a session")
    log.info("session in slot %d (%d free)", session.slot, server.scheduler.free_slots())

    async def greet() -> None:
        if server.opts.instance is not None:
            meta = json.dumps({**server.opts.instance, "slot": session.slot})
            await ws.send_bytes(bytes([Kind.METADATA]) + meta.encode())
        await ws.send_bytes(HANDSHAKE)

    loops = (lambda: _send_loop(server, ws, box, session), lambda: _recv_loop(server, ws, session))
    await run_session(ws, server.scheduler, session, box, greet, loops)


def _refusal(server: ModelServer, ws: Any) -> str | None:
    reason = server.access_refusal(ws)
    if reason is None and server.kind.transcribes:
        reason = "this server runs a speech-to-text model: use /api/asr-streaming"
    return reason


async def _recv_loop(server: ModelServer, ws: Any, session: Session) -> None:
    import sphn

    reader = sphn.OpusStreamReader(SAMPLE_RATE)
    framer = PcmFramer()

    async def error(text: str) -> None:
        await ws.send_bytes(error_message(text))

    async for data in client_messages(ws, session, server.opts, WORDING, error):
        if not data or data[0] != Kind.AUDIO:
            continue  # as moshi.server: other kinds from a client are ignored
        try:
            pcm = reader.append_bytes(data[1:])
        except Exception as e:
            await error(f"undecodable Ogg/Opus audio: {e}")
            reader = sphn.OpusStreamReader(SAMPLE_RATE)
            continue
        for frame in framer.push(np.asarray(pcm, dtype=np.float32)):
            server.scheduler.push(session, frame)


async def _send_loop(server: ModelServer, ws: Any, box: Outputs, session: Session) -> None:
    import sphn

    writer = sphn.OpusStreamWriter(SAMPLE_RATE)
    async for out in box.arrivals():
        for m in _messages(server, writer, out):
            try:
                await bounded(ws.send_bytes(m), server.opts.stall_timeout_s)
            except asyncio.TimeoutError:
                await _stalled(server, ws, box, session)
                return


def _messages(server: ModelServer, writer: Any, out: SlotOutput) -> list[bytes]:
    """One generated frame as the protocol's messages: its Opus page, its text piece."""
    msgs = []
    if out.pcm is not None:
        page = writer.append_pcm(out.pcm)
        if len(page):
            msgs.append(bytes([Kind.AUDIO]) + page)
    if out.text_id is not None:
        piece = piece_text(server.engine.tokenizer, out.text_id)
        if is_end_of_passage(out.text_id, server.kind):
            piece = EOS_PIECE  # as hibiki-zero serve sends it: its clients know it
        if piece:
            msgs.append(bytes([Kind.TEXT]) + piece.encode())
    return msgs


async def _stalled(server: ModelServer, ws: Any, box: Outputs, session: Session) -> None:
    """The client read nothing for ``stall_timeout_s``: its slot is freed and it is closed."""
    server.stalled_closed += 1
    log.warning(
        "slot %d: the client read nothing for %.1f s; closing it",
        session.slot,
        server.opts.stall_timeout_s,
    )
    box.close()
    server.scheduler.leave(session)
    await close_quietly(ws, CloseCode.STALLED)
