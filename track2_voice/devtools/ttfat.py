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

import numpy as np

from track2_voice.audible import VOICE_DB
from track2_voice.audio.devices import frames_of, load_audio
from track2_voice.backends.moshi_protocol import Kind, PcmFramer, close_quietly, open_session
from track2_voice.devtools.turn_clock import speech_end_s
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


async def measure_utterance(url: str, path: Path, s: TtfatSettings) -> UtteranceResult:
    import sphn

    pcm = load_audio(path)
    end_in_file = speech_end_s(pcm, SAMPLE_RATE, s.speech_db)
    lead = np.zeros(int(round(s.lead_in_s / FRAME_SECONDS)) * FRAME_SAMPLES, np.float32)
    tail_frames = int(np.ceil((s.max_wait_s + FRAME_SECONDS) / FRAME_SECONDS))
    stream = frames_of(np.concatenate([lead, pcm])) + [np.zeros(FRAME_SAMPLES, np.float32)] * (
        tail_frames
    )
    end_offset_s = lead.size / SAMPLE_RATE + end_in_file

    ws, _info = await open_session(url, s.insecure_tls, s.connect_timeout_s, s.handshake_timeout_s)
    result = UtteranceResult(path.name, round(end_in_file, 3), None, None)
    writer, reader, framer = (
        sphn.OpusStreamWriter(SAMPLE_RATE),
        sphn.OpusStreamReader(SAMPLE_RATE),
        PcmFramer(),
    )
    t0 = time.monotonic()
    t_end = t0 + end_offset_s
    done = asyncio.Event()
    texts: list[str] = []

    async def send() -> None:
        for k, frame in enumerate(stream):
            due = t0 + (k + 1) * FRAME_SECONDS  # the frame is complete (spoken) then
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            page = writer.append_pcm(frame)
            result.frames_sent += 1
            if len(page):
                await ws.send(bytes([Kind.AUDIO]) + page)
            if done.is_set():
                return

    async def receive() -> None:
        async for msg in ws:
            now = time.monotonic()
            if isinstance(msg, str) or not msg:
                continue
            if msg[0] == Kind.TEXT:
                texts.append(msg[1:].decode("utf-8", errors="replace"))
            if msg[0] != Kind.AUDIO:
                continue
            for frame in framer.push(np.asarray(reader.append_bytes(msg[1:]), np.float32)):
                result.frames_received += 1
                if result.first_frame_ms is None:
                    result.first_frame_ms = round((now - (t0 + FRAME_SECONDS)) * 1000.0, 1)
                if now >= t_end and rms_dbfs(frame) > s.threshold_db:
                    result.ttfat_ms = round((now - t_end) * 1000.0, 1)
                    done.set()
                    return

    sender, receiver = asyncio.create_task(send()), asyncio.create_task(receive())
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver.done():
            done.set()
        else:  # everything sent: wait out the tail
            await asyncio.wait(
                {receiver}, timeout=max(0.0, t_end + s.max_wait_s - time.monotonic())
            )
    finally:
        for t in (sender, receiver):
            t.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
        await close_quietly(ws)
    result.text = "".join(texts)
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
