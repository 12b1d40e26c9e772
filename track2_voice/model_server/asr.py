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

import asyncio
import logging
from collections import deque

import numpy as np

from track2_voice.backends.moshi_protocol import PcmFramer
from track2_voice.model_server.options import SlotSampling
from track2_voice.model_server.scheduler import NoFreeSlot
from track2_voice.transcript.stt_words import SttWords, WordDone

log = logging.getLogger(__name__)

ASR_PATH = "/api/asr-streaming"
API_KEY_HEADER = "kyutai-api-key"
GREEDY = SlotSampling(temp_text=0.0, temp=0.0)  # as Kyutai runs its STT: temp 0


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


async def asr_session(server, ws) -> None:
    """One ``/api/asr-streaming`` session on ``server`` (a ``ModelServer``)."""
    from track2_voice.model_server.server import (
        CLOSE_POLICY,
        CLOSE_TOO_BIG,
        CLOSE_TRY_LATER,
        _Outbox,
    )

    await ws.accept()

    async def refuse(reason: str, code: int) -> None:
        log.info("refused an STT session: %s", reason)
        try:
            await ws.send_bytes(pack({"type": "Error", "message": reason}))
            await ws.close(code=code, reason=reason[:120])
        except Exception:  # the client left first
            pass

    if not server.kind.transcribes:
        return await refuse(
            f"this server runs a {server.kind.value} model; {ASR_PATH} needs an STT one",
            CLOSE_POLICY,
        )
    reason = server._access_refusal(ws, ws.headers.get(API_KEY_HEADER))
    if reason is not None:
        return await refuse(reason, CLOSE_POLICY)
    box = _Outbox(asyncio.get_running_loop(), server.opts.output_queue_frames)
    try:
        session = server.scheduler.join(GREEDY, box.offer)
    except NoFreeSlot as e:
        return await refuse(str(e), CLOSE_TRY_LATER)
    box.stats = session.stats
    markers: deque[tuple[int, int]] = deque()  # (steps that must have run, marker id)
    fed = [0]  # frames pushed to the slot

    async def send(msg: dict) -> None:
        await asyncio.wait_for(ws.send_bytes(pack(msg)), server.opts.stall_timeout_s)

    async def recv_loop() -> None:
        framer = PcmFramer()
        idle = server.opts.idle_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(ws.receive(), idle)
            except asyncio.TimeoutError:
                await send({"type": "Error", "message": f"closing: nothing for {idle:g} s"})
                return
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("bytes")
            if data is None:
                await send({"type": "Error", "message": "expected binary msgpack messages"})
                continue
            if len(data) > server.opts.max_message_bytes:
                await send({"type": "Error", "message": f"a {len(data)}-byte message; closing"})
                await ws.close(code=CLOSE_TOO_BIG)
                return
            got = parse(data)
            if isinstance(got, str):
                await send({"type": "Error", "message": got})
                continue
            kind, body = got
            if kind == "Audio":
                pcm = audio_of(body)
                if isinstance(pcm, str):
                    await send({"type": "Error", "message": pcm})
                    continue
                for frame in framer.push(pcm):
                    server.scheduler.push(session, frame)
                    fed[0] += 1
            elif kind == "Marker":
                if not isinstance(body.get("id"), int):
                    await send({"type": "Error", "message": "Marker: 'id' must be an integer"})
                    continue
                markers.append((fed[0], body["id"]))
            else:
                await send({"type": "Error", "message": f"unknown type {kind!r}"})

    async def send_loop() -> None:
        words = SttWords(server.engine.tokenizer, server.engine.delay_s)
        step = 0
        while True:
            await box.ready.wait()
            box.ready.clear()
            while box.queue:
                out = box.queue.popleft()
                for w in words.token(step, out.text_id):
                    if isinstance(w, WordDone):
                        await send({"type": "Word", "text": w.text, "start_time": w.start})
                        if w.gap:
                            await send({"type": "EndWord", "stop_time": w.stop})
                step += 1
                await send({"type": "Step", "step_idx": step, "prs": [], "buffered_pcm": 0})
                while markers and markers[0][0] <= step:
                    await send({"type": "Marker", "id": markers.popleft()[1]})

    tasks: list[asyncio.Task] = []
    try:
        await ws.send_bytes(pack({"type": "Ready"}))
        tasks = [asyncio.create_task(send_loop()), asyncio.create_task(recv_loop())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except Exception as e:
        log.debug("STT session in slot %d ended: %s", session.slot, e)
    finally:
        box.closed = True
        server.scheduler.leave(session)
        for t in tasks:
            t.cancel()
        try:
            await asyncio.wait_for(ws.close(), 1.0)
        except Exception:
            pass
