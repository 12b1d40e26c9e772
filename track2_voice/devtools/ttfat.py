"""Time to first audio (TTFAT): how long after the user stops speaking the creature's voice
comes back, measured against any Moshi-protocol endpoint.

Each utterance gets its own session: a short lead-in of silence, the utterance, then silence
until ``max_wait_s`` after its end, all sent at real time (one 80 ms Ogg/Opus frame at a time,
as a microphone would). The end of speech is the last 10 ms window above ``speech_db`` in the
file (so trailing silence in the file does not count). TTFAT is the arrival time of the first
returned frame louder than ``threshold_db`` that arrives after that moment, minus that moment.
A model that never stops talking (a random tiny checkpoint) therefore measures the pipeline:
the next frame's arrival.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from track2_voice.audible import VOICE_DB
from track2_voice.audio.devices import frames_of, load_audio
from track2_voice.backends.moshi_protocol import Kind, PcmFramer, close_quietly, open_session
from track2_voice.devtools.utterances import speech_end_s
from track2_voice.frames import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from track2_voice.lipsync import rms_dbfs
from track2_voice.redact import redact_url


@dataclass
class TtfatSettings:
    threshold_db: float = VOICE_DB  # returned audio louder than this counts as "the voice"
    speech_db: float = -40.0  # input windows louder than this are speech
    lead_in_s: float = 0.5  # silence sent before each utterance
    max_wait_s: float = 4.0  # give up this long after the end of speech
    insecure_tls: bool = False
    connect_timeout_s: float = 5.0
    handshake_timeout_s: float = 30.0  # a busy one-session server makes us wait


@dataclass
class UtteranceResult:
    name: str
    speech_end_s: float
    ttfat_ms: float | None  # None: no audio above the threshold within max_wait_s
    first_frame_ms: float | None  # first returned frame after the first one sent (pipeline)
    frames_sent: int = 0
    frames_received: int = 0
    text: str = ""


@dataclass
class TtfatReport:
    url: str
    settings: TtfatSettings
    results: list[UtteranceResult] = field(default_factory=list)

    def summary(self) -> dict:
        vals = [r.ttfat_ms for r in self.results if r.ttfat_ms is not None]
        firsts = [r.first_frame_ms for r in self.results if r.first_frame_ms is not None]

        def pct(xs: list[float], q: float) -> float | None:
            return round(float(np.percentile(xs, q)), 1) if xs else None

        return {
            "utterances": len(self.results),
            "answered": len(vals),
            "ttfat_ms_p50": pct(vals, 50),
            "ttfat_ms_p90": pct(vals, 90),
            "first_frame_ms_p50": pct(firsts, 50),
        }

    def to_dict(self) -> dict:
        return {
            "url": redact_url(self.url),  # the report is shared; the token is not
            "settings": asdict(self.settings),
            "summary": self.summary(),
            "results": [asdict(r) for r in self.results],
        }


def _utterance_frames(pcm: np.ndarray, end_in_file: float, s: TtfatSettings):
    """What one session sends: ``lead_in_s`` of silence, the utterance, then silence until
    ``max_wait_s`` after its end; and where its speech ends, in seconds from the first frame."""
    lead = np.zeros(int(round(s.lead_in_s / FRAME_SECONDS)) * FRAME_SAMPLES, np.float32)
    tail_frames = int(np.ceil((s.max_wait_s + FRAME_SECONDS) / FRAME_SECONDS))
    stream = frames_of(np.concatenate([lead, pcm])) + [np.zeros(FRAME_SAMPLES, np.float32)] * (
        tail_frames
    )
    return stream, lead.size / SAMPLE_RATE + end_in_file


@dataclass
class _Exchange:
    """One utterance's session: frames go out at real time while the answer is read; the
    first frame louder than ``threshold_db`` after the end of speech (``t_end``) ends both."""

    ws: Any
    result: UtteranceResult
    threshold_db: float
    t0: float  # when the first frame started (it is complete one frame later)
    t_end: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    texts: list[str] = field(default_factory=list)

    async def send(self, stream: list[np.ndarray], writer: Any) -> None:
        for k, frame in enumerate(stream):
            due = self.t0 + (k + 1) * FRAME_SECONDS  # the frame is complete (spoken) then
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            page = writer.append_pcm(frame)
            self.result.frames_sent += 1
            if len(page):
                await self.ws.send(bytes([Kind.AUDIO]) + page)
            if self.done.is_set():
                return

    async def receive(self, reader: Any, framer: PcmFramer) -> None:
        async for msg in self.ws:
            now = time.monotonic()
            if isinstance(msg, str) or not msg:
                continue
            if msg[0] == Kind.TEXT:
                self.texts.append(msg[1:].decode("utf-8", errors="replace"))
            if msg[0] != Kind.AUDIO:
                continue
            for frame in framer.push(np.asarray(reader.append_bytes(msg[1:]), np.float32)):
                if self._heard(frame, now):
                    self.done.set()
                    return

    def _heard(self, frame: np.ndarray, now: float) -> bool:
        """Count a returned frame; True once it is the voice coming back (TTFAT taken)."""
        r = self.result
        r.frames_received += 1
        if r.first_frame_ms is None:
            r.first_frame_ms = round((now - (self.t0 + FRAME_SECONDS)) * 1000.0, 1)
        if now >= self.t_end and rms_dbfs(frame) > self.threshold_db:
            r.ttfat_ms = round((now - self.t_end) * 1000.0, 1)
            return True
        return False

    async def until_answered(self, sender: asyncio.Task, receiver: asyncio.Task, wait_s: float):
        """Until the voice came back, or everything was sent and ``wait_s`` after the end of
        speech went by."""
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver.done():
            self.done.set()
        else:  # everything sent: wait out the tail
            await asyncio.wait({receiver}, timeout=max(0.0, self.t_end + wait_s - time.monotonic()))


async def measure_utterance(url: str, path: Path, s: TtfatSettings) -> UtteranceResult:
    """TTFAT of one file, in a session of its own."""
    import sphn

    pcm = load_audio(path)
    end_in_file = speech_end_s(pcm, SAMPLE_RATE, s.speech_db)
    stream, end_offset_s = _utterance_frames(pcm, end_in_file, s)
    ws, _info = await open_session(url, s.insecure_tls, s.connect_timeout_s, s.handshake_timeout_s)
    result = UtteranceResult(path.name, round(end_in_file, 3), None, None)
    writer, reader = sphn.OpusStreamWriter(SAMPLE_RATE), sphn.OpusStreamReader(SAMPLE_RATE)
    t0 = time.monotonic()
    ex = _Exchange(ws, result, s.threshold_db, t0, t0 + end_offset_s)
    sender = asyncio.create_task(ex.send(stream, writer))
    receiver = asyncio.create_task(ex.receive(reader, PcmFramer()))
    try:
        await ex.until_answered(sender, receiver, s.max_wait_s)
    finally:
        for t in (sender, receiver):
            t.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
        await close_quietly(ws)
    result.text = "".join(ex.texts)
    return result


async def run_ttfat(url: str, files: list[Path], s: TtfatSettings, on_result=None) -> TtfatReport:
    report = TtfatReport(url, s)
    for f in files:
        r = await measure_utterance(url, f, s)
        report.results.append(r)
        if on_result is not None:
            on_result(r)
    return report


def write_report(report: TtfatReport, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
