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
from track2_voice.backends.base import Backend, StepResult
from track2_voice.config import VoiceConfig
from track2_voice.events import (
    DiscardSink,
    EventSink,
    FrameEvent,
    LoopStarted,
    LoopStopped,
    VoiceError,
)
from track2_voice.frames import FRAME_MS, Frame, check_frame
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
        says it is finished. Returns the per-frame statistics.

        Per frame: hear the user's frame, step the model, move the mouth and play the voice,
        publish the frame with its timing, count it. The loop's own overhead is the time
        outside the model step, from the frame being ready to the frame being counted."""
        perf, stats = time.perf_counter, self.stats
        self._publish_started()
        while not self._stop.is_set():
            if max_frames is not None and stats.frames >= max_frames:
                break
            frame = self.source.read()
            if frame is None:
                break
            try:
                pcm_in, t_ready = self._hear(frame)
                t0 = perf()
                result = self.backend.step(pcm_in)
                t1 = perf()
                out = check_frame(result.pcm)
            except Exception as e:  # a bad frame or a backend fault must not end the session
                self._frame_failed(frame, e)
                continue
            mouth = self.lipsync.update(out)
            self.sink.write(out)
            done = perf()
            model_ms = (t1 - t0) * 1000.0
            overhead_ms = ((t0 - t_ready) + (done - t1)) * 1000.0
            missed = self._publish_frame(frame, result, out, mouth, model_ms, overhead_ms)
            stats.frames += 1
            stats.missed += missed
            stats.model_ms.append(model_ms)
            stats.overhead_ms.append(overhead_ms + (perf() - done) * 1000.0)
            if self.transcript is not None and self.transcript.inline:
                self.transcript.hear(frame.index, frame.t, pcm_in)  # offline: after its time
            if stop_when_finished and self.backend.finished:
                break
        self._publish_stopped()
        return stats

    def _publish_started(self) -> None:
        self.events.publish(
            LoopStarted(
                index=0,
                t=time.monotonic(),
                backend=self.backend.name,
                realtime=self.source.realtime,
            )
        )

    def _hear(self, frame: Frame) -> tuple[np.ndarray, float]:
        """The user's frame, checked, to the live transcript and the speech detector; returns
        it and when the loop's own time on it starts (after an inline detector: offline, its
        time is not the loop's overhead)."""
        t_ready = time.perf_counter()
        pcm_in = check_frame(frame.pcm)
        transcript, vad = self.transcript, self.vad
        if transcript is not None and not transcript.inline:
            # first: its pipe syscalls release the GIL, and the VAD thread woken
            # below would take it (measured: feed p99 10 ms when fed after the VAD)
            transcript.hear(frame.index, frame.t, pcm_in)
        if vad is not None:
            vad.hear(frame.index, frame.t, pcm_in)
            if vad.inline:
                t_ready = time.perf_counter()
        return pcm_in, t_ready

    def _frame_failed(self, frame: Frame, e: Exception) -> None:
        self.stats.errors += 1
        log.exception("frame %d failed", frame.index)
        self.events.publish(
            VoiceError(index=frame.index, t=frame.t, where="step", error=str(e))
        )  # fmt: skip

    def _publish_frame(
        self,
        frame: Frame,
        result: StepResult,
        out: np.ndarray,
        mouth: float,
        model_ms: float,
        overhead_ms: float,
    ) -> bool:
        """The backend's events, placed at this frame, then the frame itself. Returns whether
        it was missed: finished after the next frame was due (``frame.t`` + 80 ms)."""
        missed = (time.monotonic() - frame.t) * 1000.0 > self.budget_ms
        for ev in result.events:
            if ev.index < 0:
                ev.index, ev.t = frame.index, frame.t
            self.events.publish(ev)
        speaking = self.vad.speaking if self.vad is not None else False
        self.events.publish(
            FrameEvent(
                index=frame.index,
                t=frame.t,
                mouth=mouth,
                rms_db=self.lipsync.last_db,
                text=result.text,
                model_ms=model_ms,
                overhead_ms=overhead_ms,
                missed=missed,
                user_speaking=speaking,
                pcm=out,
            )
        )
        return missed

    def _publish_stopped(self) -> None:
        """Let the workers hear the last frames, then say the loop stopped, with its summary."""
        if self.vad is not None:
            self.vad.flush()
        if self.transcript is not None:
            self.transcript.flush()
        self.events.publish(
            LoopStopped(
                index=self.stats.frames,
                t=time.monotonic(),
                extra=self._summary(),
                dropped=self.events.drops(),
            )
        )

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
