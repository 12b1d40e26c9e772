"""Echo cancellation for a body with its own mic and speaker: the creature must not hear itself.

Moshi is full duplex: without this, a robot's mic hears the robot's speaker, the model takes its
own voice for the user's and the VAD fires on it. The phone page gets echo cancellation from the
browser; here WebRTC's audio processing module (AEC3, shipped in the ``livekit`` package) does
the same: what the speaker plays is the far-end reference (``far``, handed over by the sound
card's output callback as each frame is rendered), and every mic frame is cleaned
(``process``) before the fast loop and the VAD see it. The module works on 10 ms slices at
24 kHz and finds the exact speaker-to-mic delay itself; ``delay_ms`` is only its starting hint.

Why inline on the fast loop's thread (``EchoCancelledSource.read``): it costs ~1.2 ms of CPU
per 80 ms frame here, about what the VAD costs (``benchmarks/echo.py``), and a frame cannot be
used before it is cleaned anyway; a thread would add a hand-over without taking the work off
the frame's path.

The delay between what was played and its echo in the mic is also measured here (GCC-PHAT over
the last second, every ``estimate_every_s``) and logged when it changes: a delay that keeps
moving or no echo found while the creature speaks means a misconfigured sound card.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from track2_voice.audio.devices import AudioInputError, AudioSource
from track2_voice.config import EchoConfig
from track2_voice.frames import FRAME_MS, FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, Frame

log = logging.getLogger(__name__)

SLICE = SAMPLE_RATE // 100  # the module's 10 ms
FAR_BACKLOG = 50  # rendered frames waiting for the next mic frame (4 s) before drop-oldest
PCM16 = 32767.0
EST_RATE = 8_000  # the delay is estimated at 8 kHz: the speech band is enough
EST_WINDOW_S = 1.0
EST_MAX_DELAY_S = 0.5
EST_MIN_RMS = 10 ** (-50 / 20)  # the far end must be this loud for an estimate
EST_MIN_PEAK = 4.0  # GCC-PHAT peak over its mean: below this there is no clear echo path
EST_LOG_CHANGE_MS = 10.0
EST_FIRST_FRAMES = 8  # the first estimate after 0.64 s of audio
EST_RETRY_FRAMES = 4  # then every 0.32 s until one is clear


def _to_pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * PCM16).astype("<i2").tobytes()


@dataclass(slots=True)
class DelayEstimate:
    delay_ms: float
    peak: float  # GCC-PHAT peak over its mean (how clear the echo path is)


class DelayEstimator:
    """Where the far end shows up in the mic: GCC-PHAT over the newest second of both."""

    def __init__(self) -> None:
        n = int(EST_WINDOW_S * EST_RATE)
        self._far = np.zeros(n, dtype=np.float32)
        self._near = np.zeros(n, dtype=np.float32)

    @staticmethod
    def _decimate(x: np.ndarray) -> np.ndarray:
        k = SAMPLE_RATE // EST_RATE  # a box average is low-pass enough for a delay
        return x[: x.size - x.size % k].reshape(-1, k).mean(axis=1)

    @staticmethod
    def _push(buf: np.ndarray, x: np.ndarray) -> None:
        n = min(x.size, buf.size)
        buf[:-n] = buf[n:]
        buf[-n:] = x[-n:]

    def add(self, far: np.ndarray | None, near: np.ndarray) -> None:
        if far is not None and far.size:
            self._push(self._far, self._decimate(far))
        self._push(self._near, self._decimate(near))

    def estimate(self) -> DelayEstimate | None:
        far, near = self._far, self._near
        if np.sqrt(np.mean(far**2)) < EST_MIN_RMS:
            return None
        n = 1 << int(np.ceil(np.log2(2 * far.size)))
        cross = np.fft.rfft(near, n) * np.conj(np.fft.rfft(far, n))
        r = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n)
        lags = r[: int(EST_MAX_DELAY_S * EST_RATE)]
        k = int(np.argmax(lags))
        peak = float(lags[k] / (np.mean(np.abs(r)) + 1e-12))
        if peak < EST_MIN_PEAK:
            return None
        return DelayEstimate(1000.0 * k / EST_RATE, peak)


class EchoCanceller:
    """The creature's own voice out of the mic. ``far`` from any thread, ``process`` on one."""

    def __init__(self, cfg: EchoConfig | None = None, device_delay_ms: float = 0.0) -> None:
        self.cfg = cfg or EchoConfig()
        try:
            from livekit import rtc
        except ImportError as e:  # a dependency; say what to do rather than fail deep inside
            raise AudioInputError(
                f"audio.echo.enabled: echo cancellation needs the livekit package ({e}); "
                "pip install livekit, or set audio.echo.enabled=false"
            ) from e
        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True,
            noise_suppression=self.cfg.noise_suppression,
            high_pass_filter=self.cfg.high_pass_filter,
        )
        hint = self.cfg.delay_ms if self.cfg.delay_ms is not None else device_delay_ms
        self.delay_hint_ms = int(round(hint))
        self._far: deque[np.ndarray] = deque(maxlen=FAR_BACKLOG)
        self.far_dropped = 0
        self.frames = 0
        self.cost_ms: deque[float] = deque(maxlen=1000)
        self._estimator = DelayEstimator()
        self._estimate_every = max(1, round(self.cfg.estimate_every_s / FRAME_SECONDS))
        self._next_estimate = EST_FIRST_FRAMES
        self.follow = self.cfg.delay_ms is None  # a configured hint is kept as it is
        self.estimate: DelayEstimate | None = None
        log.info("echo cancellation on (delay hint %d ms)", self.delay_hint_ms)

    def far(self, pcm: np.ndarray) -> None:
        """What the speaker is playing now (the sound card's output callback calls this)."""
        if len(self._far) == self._far.maxlen:
            self.far_dropped += 1
        self._far.append(pcm)

    def _frame(self, data: bytes):
        return self._rtc.AudioFrame(data, SAMPLE_RATE, 1, SLICE)

    def process(self, mic: np.ndarray) -> np.ndarray:
        """One mic frame (any multiple of 10 ms) -> the same with the creature's echo removed."""
        t0 = time.perf_counter()
        apm = self._apm
        far_audio = []
        while self._far:
            pcm = self._far.popleft()
            far_audio.append(pcm)
            data = _to_pcm16(pcm)
            for i in range(0, len(data) - 2 * SLICE + 1, 2 * SLICE):
                apm.process_reverse_stream(self._frame(data[i : i + 2 * SLICE]))
        apm.set_stream_delay_ms(self.delay_hint_ms)
        data = _to_pcm16(mic)
        out = []
        for i in range(0, len(data) - 2 * SLICE + 1, 2 * SLICE):
            f = self._frame(bytearray(data[i : i + 2 * SLICE]))
            apm.process_stream(f)  # in place
            out.append(np.frombuffer(f.data, dtype=np.int16))
        clean = np.concatenate(out).astype(np.float32) / PCM16
        self._estimator.add(np.concatenate(far_audio) if far_audio else None, mic)
        self.frames += 1
        self.cost_ms.append((time.perf_counter() - t0) * 1000.0)
        if self.frames >= self._next_estimate:  # by frames: file runs measure it too
            est = self._estimator.estimate()
            # until the first estimate, look often: the start of a session is when a wrong
            # hint lets the creature's first words through
            self._next_estimate += self._estimate_every if est else EST_RETRY_FRAMES
            self._update(est)
        return clean

    def _update(self, est: DelayEstimate | None) -> None:
        if est is None:
            return
        old = self.estimate
        self.estimate = est
        hint = int(round(est.delay_ms + FRAME_MS))
        if self.follow and abs(hint - self.delay_hint_ms) >= EST_LOG_CHANGE_MS:
            # the reference of a whole frame is handed over before the frame's mic slices, so
            # the module sees the measured delay plus one frame. A change makes it realign
            # (a moment of leaking echo), so small differences are left alone.
            self.delay_hint_ms = hint
        if old is None or abs(old.delay_ms - est.delay_ms) >= EST_LOG_CHANGE_MS:
            log.info(
                "echo: speaker-to-mic delay %.0f ms (clarity %.1f); canceller hint %d ms",
                est.delay_ms,
                est.peak,
                self.delay_hint_ms,
            )

    def stats(self) -> dict:
        costs = list(self.cost_ms)
        return {
            "frames": self.frames,
            "far_dropped": self.far_dropped,
            "delay_estimate_ms": None if self.estimate is None else self.estimate.delay_ms,
            "cost_ms_p50": round(float(np.percentile(costs, 50)), 3) if costs else 0.0,
            "cost_ms_p99": round(float(np.percentile(costs, 99)), 3) if costs else 0.0,
        }


class EchoCancelledSource(AudioSource):
    """Wraps the mic: every frame it yields has been through the canceller."""

    def __init__(self, inner: AudioSource, canceller: EchoCanceller) -> None:
        self.inner = inner
        self.canceller = canceller
        self.realtime = inner.realtime

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        assert frame.pcm.size % SLICE == 0, f"mic frames must be whole 10 ms ({FRAME_SAMPLES})"
        return Frame(frame.index, self.canceller.process(frame.pcm), frame.t)

    def close(self) -> None:
        self.inner.close()


def cancel_echo(source, sink, cfg: EchoConfig) -> tuple[EchoCancelledSource, EchoCanceller]:
    """Put the canceller between a sound card's speaker (``sink.on_render``) and its mic.
    The delay hint is the card's output + input latency and one frame (the mic delivers a
    frame once all of it is captured)."""
    hint = getattr(sink, "latency_ms", 0.0) + getattr(source, "latency_ms", 0.0) + FRAME_MS
    canceller = EchoCanceller(cfg, device_delay_ms=hint)
    sink.on_render = canceller.far
    return EchoCancelledSource(source, canceller), canceller
