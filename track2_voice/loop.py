"""The fast loop: paced by its audio source, one backend step per 80 ms frame.

Per frame it measures model time and its own overhead, computes the mouth, taps the text and
publishes a FrameEvent. Everything downstream (recording, the slow loop, the face) consumes
from bounded drop-oldest subscriptions, so nothing here ever waits on them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from track2_voice.audio.devices import AudioSink, AudioSource, NullSink
from track2_voice.backends.base import Backend
from track2_voice.config import VoiceConfig
from track2_voice.events import (
    DiscardSink,
    EventSink,
    FrameEvent,
    LoopStarted,
    LoopStopped,
    VoiceError,
)
from track2_voice.frames import FRAME_MS, check_frame
from track2_voice.lipsync import LipSync
from track2_voice.timings import RecentTimings
from track2_voice.transcript.base import Transcriber
from track2_voice.vad import UserSpeechWorker

log = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """Counts over the whole session; step and overhead percentiles over its newest
    ``KEEP_FRAMES`` frames (a creature may run for days)."""

    frames: int = 0
    missed: int = 0
    model_ms: RecentTimings = field(default_factory=RecentTimings)
    overhead_ms: RecentTimings = field(default_factory=RecentTimings)
    errors: int = 0

    def summary(self) -> dict:
        def pct(xs: RecentTimings, q: float) -> float:
            return round(float(np.percentile(xs.values(), q)), 3) if len(xs) else 0.0

        return {
            "frames": self.frames,
            "missed": self.missed,
            "errors": self.errors,
            "model_ms_p50": pct(self.model_ms, 50),
            "model_ms_p99": pct(self.model_ms, 99),
            "overhead_ms_p50": pct(self.overhead_ms, 50),
            "overhead_ms_p99": pct(self.overhead_ms, 99),
        }


class FastLoop:
    def __init__(
        self,
        backend: Backend,
        source: AudioSource,
        sink: AudioSink | None = None,
        events: EventSink | None = None,
        cfg: VoiceConfig | None = None,
        vad: bool = True,
        transcript: Transcriber | None = None,
    ) -> None:
        """``transcript``: the worker that hears the user's words (``voice.transcript``), fed
        the same user frames as the VAD; the caller builds it and the loop closes it."""
        self.cfg = cfg or VoiceConfig()
        self.backend = backend
        self.source = source
        self.sink = sink or NullSink()
        self.events = events or DiscardSink()
        self.lipsync = LipSync(self.cfg.lipsync)
        # offline runs (a file, faster than real time) detect speech inline, so results are
        # repeatable; live runs do it on a worker thread, off the frame's critical path
        self.vad = (
            UserSpeechWorker(self.events.publish, self.cfg.vad, inline=not source.realtime)
            if vad
            else None
        )
        if self.vad is not None:
            backend.set_user_speech(self.vad.detector)
        self.transcript = transcript
        self.stats = LoopStats()
        self._stop = threading.Event()
        self.budget_ms = FRAME_MS

    def stop(self) -> None:
        self._stop.set()
        self.source.close()

    def run(self, max_frames: int | None = None, stop_when_finished: bool = False) -> LoopStats:
        """Run until the source ends, ``stop()``, ``max_frames`` or (optionally) the backend
        says it is finished. Returns the per-frame statistics."""
        backend, lipsync, vad, sink = self.backend, self.lipsync, self.vad, self.sink
        transcript = self.transcript
        events = self.events
        stats = self.stats
        perf = time.perf_counter
        events.publish(
            LoopStarted(
                index=0, t=time.monotonic(), backend=backend.name, realtime=self.source.realtime
            )
        )
        while not self._stop.is_set():
            if max_frames is not None and stats.frames >= max_frames:
                break
            frame = self.source.read()
            if frame is None:
                break
            t_ready = perf()
            t_frame = frame.t
            try:
                pcm_in = check_frame(frame.pcm)
                if transcript is not None and not transcript.inline:
                    # first: its pipe syscalls release the GIL, and the VAD thread woken
                    # below would take it (measured: feed p99 10 ms when fed after the VAD)
                    transcript.feed(frame.index, t_frame, pcm_in)
                if vad is not None:
                    vad.feed(frame.index, t_frame, pcm_in)
                    if vad.inline:  # offline: its time is not the loop's overhead
                        t_ready = perf()
                t0 = perf()
                result = backend.step(pcm_in)
                t1 = perf()
                out = check_frame(result.pcm)
            except Exception as e:  # a bad frame or a backend fault must not end the session
                stats.errors += 1
                log.exception("frame %d failed", frame.index)
                events.publish(VoiceError(index=frame.index, t=t_frame, where="step", error=str(e)))
                continue
            mouth = lipsync.update(out)
            sink.write(out)
            model_ms = (t1 - t0) * 1000.0
            done = perf()
            overhead_ms = ((t0 - t_ready) + (done - t1)) * 1000.0
            # deadline: finished before the next frame is due (frame.t + 80 ms)
            elapsed_ms = (time.monotonic() - t_frame) * 1000.0
            missed = elapsed_ms > self.budget_ms
            for ev in result.events:
                if ev.index < 0:
                    ev.index, ev.t = frame.index, t_frame
                events.publish(ev)
            events.publish(
                FrameEvent(
                    index=frame.index,
                    t=t_frame,
                    mouth=mouth,
                    rms_db=lipsync.last_db,
                    text=result.text,
                    model_ms=model_ms,
                    overhead_ms=overhead_ms,
                    missed=missed,
                    user_speaking=vad.speaking if vad is not None else False,
                    pcm=out,
                )
            )
            stats.frames += 1
            stats.missed += missed
            stats.model_ms.append(model_ms)
            stats.overhead_ms.append(overhead_ms + (perf() - done) * 1000.0)
            if transcript is not None and transcript.inline:  # offline: after the frame's time
                transcript.feed(frame.index, t_frame, pcm_in)
            if stop_when_finished and backend.finished:
                break
        if vad is not None:
            vad.flush()
        if transcript is not None:
            transcript.flush()
        events.publish(
            LoopStopped(
                index=stats.frames,
                t=time.monotonic(),
                extra=self._summary(),
                dropped=events.drops(),
            )
        )
        return stats

    def _summary(self) -> dict:
        summary = self.stats.summary()
        if self.transcript is not None:
            summary["transcript_dropped"] = self.transcript.dropped
            summary["transcript_words"] = self.transcript.words
        return summary

    def close(self) -> None:
        if self.vad is not None:
            self.vad.close()
        if self.transcript is not None:
            self.transcript.close()
        self.sink.close()
        self.source.close()
        self.backend.close()
