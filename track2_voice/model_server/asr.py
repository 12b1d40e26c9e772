"""Kyutai's streaming STT protocol at ``/api/asr-streaming``, served from the model server's
batched slots (a classroom shares one STT model as it shares one Moshi).

The protocol is moshi-server's (``batched_asr.rs``), as Kyutai's Unmute and its clients speak
it: binary WebSocket messages, each a msgpack map with a ``type``.

- client -> server: ``{"type": "Audio", "pcm": [float, ...]}`` (24 kHz mono, any length);
  ``{"type": "Marker", "id": int}``: echoed back once every frame sent before it has been
  through the model; the model writes a word its delay after hearing it, so a client that
  wants the last words sends that much silence first (as Kyutai's clients do), then a marker;
- server -> client: ``{"type": "Ready"}`` first; ``{"type": "Word", "text", "start_time"}``
  per word; ``{"type": "EndWord", "stop_time"}`` when silence ends a word; ``{"type": "Step",
  "step_idx", "prs", "buffered_pcm"}`` per 80 ms step; ``{"type": "Marker", "id"}``;
  ``{"type": "Error", "message"}`` for a malformed message (the session goes on).

Credentials: moshi-server's ``kyutai-api-key`` header, or ``?token=`` as on ``/api/chat``.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from track2_voice.backends.moshi_protocol import PcmFramer
from track2_voice.common.web import CloseCode, bounded
from track2_voice.model_server.options import SlotSampling
from track2_voice.model_server.scheduler import NoFreeSlot, Session
from track2_voice.model_server.session_io import (
    Outputs,
    Wording,
    client_messages,
    join,
    refuse,
    run_session,
)
from track2_voice.transcript.stt_words import SttWords, WordDone

if TYPE_CHECKING:
    from track2_voice.model_server.server import ModelServer

log = logging.getLogger(__name__)

ASR_PATH = "/api/asr-streaming"
API_KEY_HEADER = "kyutai-api-key"
GREEDY = SlotSampling(temp_text=0.0, temp=0.0)  # as Kyutai runs its STT: temp 0
WHAT = "an STT session"


def pack(msg: dict) -> bytes:
    import msgpack

    return msgpack.packb(msg, use_single_float=False)


def parse(data: bytes) -> tuple[str, dict] | str:
    """(type, message) or a one-line reason it is malformed."""
    import msgpack

    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        return f"not msgpack ({type(e).__name__})"
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        return "expected a msgpack map with a 'type' (Audio or Marker)"
    return msg["type"], msg


def audio_of(msg: dict) -> np.ndarray | str:
    pcm = msg.get("pcm")
    if not isinstance(pcm, list) or not all(isinstance(x, (int, float)) for x in pcm):
        return "Audio: 'pcm' must be a list of numbers (24 kHz mono float samples)"
    arr = np.asarray(pcm, dtype=np.float32)
    if not np.isfinite(arr).all():
        return "Audio: 'pcm' holds NaN or infinity"
    return np.clip(arr, -1.0, 1.0)


WORDING = Wording(
    quiet="closing: nothing for {idle:g} s",
    not_binary="expected binary msgpack messages",
    too_big="a {size}-byte message; closing",
)


def error_message(text: str) -> bytes:
    return pack({"type": "Error", "message": text})


async def asr_session(server: ModelServer, ws: Any) -> None:
    """One ``/api/asr-streaming`` session on ``server``, on a WebSocket not yet accepted."""
    await ws.accept()
    if not server.kind.transcribes:
        reason = f"this server runs a {server.kind.value} model; {ASR_PATH} needs an STT one"
    else:
        reason = server.access_refusal(ws, ws.headers.get(API_KEY_HEADER))
    if reason is not None:
        return await refuse(ws, error_message(reason), reason, CloseCode.POLICY, WHAT)
    try:
        session, box = join(server.scheduler, server.opts, GREEDY)
    except NoFreeSlot as e:
        return await refuse(ws, error_message(str(e)), str(e), CloseCode.TRY_LATER, WHAT)
    stt = _SttSession(server, ws, session)

    async def greet() -> None:
        await ws.send_bytes(pack({"type": "Ready"}))

    await run_session(
        ws, server.scheduler, session, box, greet, (stt.receive, lambda: stt.send_all(box))
    )


class _SttSession:
    """One client's words: frames in, words, steps and markers out."""

    def __init__(self, server: ModelServer, ws: Any, session: Session) -> None:
        self.server, self.ws, self.session = server, ws, session
        self.markers: deque[tuple[int, int]] = deque()  # (steps that must have run, marker id)
        self.fed = 0  # frames pushed to the slot

    async def send(self, msg: dict) -> None:
        await bounded(self.ws.send_bytes(pack(msg)), self.server.opts.stall_timeout_s)

    async def error(self, text: str) -> None:
        await self.send({"type": "Error", "message": text})

    async def receive(self) -> None:
        framer = PcmFramer()
        opts = self.server.opts
        async for data in client_messages(self.ws, self.session, opts, WORDING, self.error):
            got = parse(data)
            if isinstance(got, str):
                await self.error(got)
                continue
            reply = self._take(framer, *got)
            if reply is not None:
                await self.error(reply)

    def _take(self, framer: PcmFramer, kind: str, body: dict) -> str | None:
        """One well-formed message; what is wrong with it, if anything."""
        if kind == "Audio":
            pcm = audio_of(body)
            if isinstance(pcm, str):
                return pcm
            for frame in framer.push(pcm):
                self.server.scheduler.push(self.session, frame)
                self.fed += 1
        elif kind == "Marker":
            if not isinstance(body.get("id"), int):
                return "Marker: 'id' must be an integer"
            self.markers.append((self.fed, body["id"]))
        else:
            return f"unknown type {kind!r}"
        return None

    async def send_all(self, box: Outputs) -> None:
        words = SttWords(self.server.engine.tokenizer, self.server.engine.delay_s)
        step = 0
        async for out in box.arrivals():
            for w in words.token(step, out.text_id):
                if isinstance(w, WordDone):
                    await self.send({"type": "Word", "text": w.text, "start_time": w.start})
                    if w.gap:
                        await self.send({"type": "EndWord", "stop_time": w.stop})
            step += 1
            await self.send({"type": "Step", "step_idx": step, "prs": [], "buffered_pcm": 0})
            while self.markers and self.markers[0][0] <= step:
                await self.send({"type": "Marker", "id": self.markers.popleft()[1]})
