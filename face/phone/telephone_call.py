"""One telephone call's media: the caller's audio in, the creature's voice out, paced.

Each frame the creature says goes to the carrier as four 20 ms ``media`` messages, paced at
real time: the call keeps the carrier's buffer at most ``lead_ms`` ahead of the caller's ear,
so a ``clear`` on barge-in drops little and the creature's mouth on the face stays near what
the caller hears. A ``mark`` follows every few frames; the carrier echoes it once the audio
before it has played, which tells how far the caller has heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.websockets import WebSocket

from face.phone.stream_io import close
from face.phone.telephone_audio import CHUNK_BYTES, PHONE_RATE, TelephoneAudio
from face.phone.twilio_protocol import (
    InboundMsg,
    MarkMsg,
    MediaMsg,
    StartMsg,
    clear_message,
    mark_message,
    media_message,
)
from track2_voice.common.web import CloseCode, Mailbox, bounded

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 5.0
INBOUND_TRACKS = ("inbound", "inbound_track")


@dataclass
class Call:
    """One call: its converters, its paced outgoing mailbox (``send_paced`` paces it, so
    ``Mailbox.send_all`` is not used) and its counters."""

    ws: WebSocket
    start: StartMsg
    codec: TelephoneAudio
    out: Mailbox  # (20 ms of mu-law, the mark that follows it or None)
    play_until: float = 0.0  # loop time when the carrier will have played all we sent
    task: asyncio.Task | None = None
    t0: float = field(default_factory=time.monotonic)
    chunks_in: int = 0
    chunks_lost: int = 0
    last_chunk: int = 0
    underruns: int = 0
    marks_sent: int = 0
    marks_heard: int = 0
    heard_frame: int = -1
    clears: int = 0
    pending_marks: set[str] = field(default_factory=set)
    errors: int = 0

    def stats(self) -> dict[str, Any]:
        return {
            "seconds": round(time.monotonic() - self.t0, 3),
            "chunks_in": self.chunks_in,
            "chunks_lost": self.chunks_lost,
            "chunks_out": self.out.sent,
            "dropped_out": self.out.dropped,
            "underruns": self.underruns,
            "marks_sent": self.marks_sent,
            "marks_heard": self.marks_heard,
            "heard_frame": self.heard_frame,
            "clears": self.clears,
            "bad_messages": self.errors,
        }

    # -- the caller -------------------------------------------------------------------------------
    def heard(self, msg: InboundMsg, on_audio: Callable[[np.ndarray], None] | None) -> None:
        """What the carrier reports of the caller: audio (for ``on_audio``) and played marks."""
        if isinstance(msg, MediaMsg) and msg.track in INBOUND_TRACKS:
            self._media(msg, on_audio)
        elif isinstance(msg, MarkMsg) and msg.name in self.pending_marks:
            self.pending_marks.discard(msg.name)
            self.marks_heard += 1
            self.heard_frame = max(self.heard_frame, _frame_of(msg.name))

    def _media(self, msg: MediaMsg, on_audio: Callable[[np.ndarray], None] | None) -> None:
        if self.chunks_in and msg.chunk > self.last_chunk + 1:
            self.chunks_lost += msg.chunk - self.last_chunk - 1
        self.last_chunk = msg.chunk
        self.chunks_in += 1
        if on_audio is not None and msg.payload:
            try:
                on_audio(self.codec.decode(msg.payload))
            except Exception:  # the consumer's fault must not end the call
                log.exception("telephony: on_audio failed")

    # -- the creature's voice -------------------------------------------------------------------
    def queue_frame(self, index: int, pcm: np.ndarray, mark_every_frames: int) -> None:
        """One 80 ms frame as four 20 ms chunks, a mark after the last every few frames; a
        full queue drops its oldest chunk (counted)."""
        data = self.codec.encode(pcm)
        n = len(data)
        for i in range(0, n, CHUNK_BYTES):
            last = i + CHUNK_BYTES >= n
            mark = f"frame-{index}" if last and index % mark_every_frames == 0 else None
            self.out.offer((data[i : i + CHUNK_BYTES], mark))

    async def clear(self) -> float | None:
        """Drop what is queued here and what the carrier buffered; the milliseconds dropped,
        or None when the carrier could not be told."""
        loop = asyncio.get_running_loop()
        queued = sum(len(c) for c, _ in self.out.drain())
        buffered_s = max(0.0, self.play_until - loop.time())
        self.play_until = loop.time()
        self.clears += 1
        try:
            await bounded(self.ws.send_text(clear_message(self.start.stream_sid)), SEND_TIMEOUT_S)
        except Exception as e:
            log.debug("telephony: clear not sent: %s", e)
            return None
        return 1000.0 * (queued / PHONE_RATE + buffered_s)

    async def sender(self, lead_s: float) -> None:
        """The call's sender task: ``send_paced`` until cancelled; a carrier that takes
        nothing for ``SEND_TIMEOUT_S`` is hung up on, a broken socket ends this call only."""
        try:
            await self.send_paced(lead_s)
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            log.warning(
                "telephony: the carrier took nothing for %.1f s: hanging up", SEND_TIMEOUT_S
            )
            await close(self.ws, CloseCode.STALLED, "stalled")
        except Exception as e:
            log.debug("telephony: send failed: %s", e)

    async def send_paced(self, lead_s: float) -> None:
        """Send the queued chunks no more than ``lead_s`` ahead of the caller's ear, until
        cancelled; raises ``asyncio.TimeoutError`` when the carrier takes nothing."""
        loop = asyncio.get_running_loop()
        while True:
            await self.out.wait()
            while len(self.out):
                ahead = self._ahead(loop.time())
                if ahead > lead_s:
                    await asyncio.sleep(ahead - lead_s)
                    continue  # a clear may have emptied the queue meanwhile
                item = self.out.get_nowait()
                if item is not None:
                    await self._send(*item)

    def _ahead(self, now: float) -> float:
        """How far ahead of the caller's ear the carrier's buffer is (a gap restarts it)."""
        if self.play_until < now:
            if self.out.sent:
                self.underruns += 1
            self.play_until = now  # the caller heard a gap; start again from now
        return self.play_until - now

    async def _send(self, chunk: bytes, mark: str | None) -> None:
        sid = self.start.stream_sid
        await bounded(self.ws.send_text(media_message(sid, chunk)), SEND_TIMEOUT_S)
        self.play_until += len(chunk) / PHONE_RATE
        self.out.sent += 1
        if mark is not None:
            self.pending_marks.add(mark)
            self.marks_sent += 1
            await bounded(self.ws.send_text(mark_message(sid, mark)), SEND_TIMEOUT_S)


def _frame_of(mark: str) -> int:
    try:
        return int(mark.rsplit("-", 1)[-1])
    except ValueError:
        return -1
