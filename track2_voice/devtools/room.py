"""A simulated room with a speaker and a mic, for testing echo cancellation without a sound card.

What the creature plays through ``speaker`` is convolved with the room's impulse response
(pyroomacoustics' image-source model of a shoebox room) and comes back in ``mic`` one frame plus
the devices' latency later, mixed with the user's speech and a little noise. It is the closed
loop a robot lives in: the creature's voice of frame k is in the mic from frame k+1 on. The
echo and the user's part are kept apart, so a test can tell the canceller's echo return loss
enhancement (ERLE) and where the user really spoke.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from track2_voice.audio.devices import AudioSink, AudioSource
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """A shoebox room: size in metres, wall absorption (0..1), speaker and mic positions, and
    the sound card's own latency on top of the acoustic path."""

    name: str
    size: tuple[float, float, float]
    absorption: float
    speaker: tuple[float, float, float]
    mic: tuple[float, float, float]
    device_delay_ms: float = 20.0
    max_order: int = 12
    direct_db: float = -12.0  # the direct path's gain: the speaker's loudness at the mic


# a robot's speaker a hand's width from its mic, in three kinds of room
ROOMS = (
    RoomSpec("small-damped", (3.0, 3.5, 2.5), 0.6, (1.0, 1.0, 1.0), (1.15, 1.1, 1.05), 10.0),
    RoomSpec("living-room", (4.0, 5.0, 2.6), 0.35, (1.0, 1.0, 1.2), (1.3, 1.2, 1.2), 30.0),
    RoomSpec("reverberant", (6.0, 8.0, 3.0), 0.12, (2.0, 2.0, 1.5), (2.4, 2.2, 1.5), 60.0),
)


def impulse_response(spec: RoomSpec) -> np.ndarray:
    """The speaker-to-mic impulse response at 24 kHz (needs pyroomacoustics)."""
    import pyroomacoustics as pra

    room = pra.ShoeBox(
        list(spec.size),
        fs=SAMPLE_RATE,
        materials=pra.Material(spec.absorption),
        max_order=spec.max_order,
    )
    room.add_source(list(spec.speaker))
    room.add_microphone(list(spec.mic))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    rir *= 10 ** (spec.direct_db / 20) / np.max(np.abs(rir))  # the direct path is the peak
    return rir.astype(np.float32)


def rt60_s(rir: np.ndarray) -> float:
    """Reverberation time from the Schroeder decay (-5 to -35 dB, extrapolated to -60)."""
    energy = np.cumsum(rir[::-1] ** 2)[::-1]
    db = 10 * np.log10(energy / energy[0] + 1e-12)
    t = np.arange(rir.size) / SAMPLE_RATE
    i5, i35 = np.argmax(db <= -5), np.argmax(db <= -35)
    if i35 <= i5:
        return float(t[-1])
    return float(2.0 * (t[i35] - t[i5]))


class SimulatedRoom:
    """``speaker`` (an AudioSink) and ``mic`` (an AudioSource, as fast as the loop reads it)."""

    def __init__(
        self,
        rir: np.ndarray,
        frames: int,
        user: list[tuple[float, np.ndarray]] | None = None,
        device_delay_ms: float = 20.0,
        noise_dbfs: float = -70.0,
        seed: int = 0,
        on_render: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        self.rir = np.asarray(rir, dtype=np.float32)
        self.frames = frames
        n = (frames + 2) * FRAME_SAMPLES
        self.echo = np.zeros(n + self.rir.size + FRAME_SAMPLES * 2, dtype=np.float32)
        self.user = np.zeros(n, dtype=np.float32)
        self.user_spans: list[tuple[float, float]] = []
        for start_s, pcm in user or []:
            i = int(start_s * SAMPLE_RATE)
            k = max(0, min(pcm.size, n - i))
            self.user[i : i + k] += pcm[:k]
            self.user_spans.append((start_s, start_s + k / SAMPLE_RATE))
        rng = np.random.default_rng(seed)
        self.noise = (rng.standard_normal(n) * 10 ** (noise_dbfs / 20)).astype(np.float32)
        self.delay = int(device_delay_ms * SAMPLE_RATE / 1000)
        self.on_render = on_render
        self.speaker = _Speaker(self)
        self.mic = _Mic(self)
        self._played = 0

    def _play(self, pcm: np.ndarray) -> None:
        if self.on_render is not None:
            self.on_render(pcm)
        # heard from the next frame on, after the devices' latency
        at = (self._played + 1) * FRAME_SAMPLES + self.delay
        self._played += 1
        wet = fftconvolve(pcm, self.rir)
        end = min(at + wet.size, self.echo.size)
        if at < end:
            self.echo[at:end] += wet[: end - at]

    def mic_frame(self, j: int) -> np.ndarray:
        s = slice(j * FRAME_SAMPLES, (j + 1) * FRAME_SAMPLES)
        return (self.echo[s] + self.user[s] + self.noise[s]).astype(np.float32)

    def echo_frame(self, j: int) -> np.ndarray:
        return self.echo[j * FRAME_SAMPLES : (j + 1) * FRAME_SAMPLES]

    def user_frame(self, j: int) -> np.ndarray:
        return self.user[j * FRAME_SAMPLES : (j + 1) * FRAME_SAMPLES]


class _Speaker(AudioSink):
    def __init__(self, room: SimulatedRoom) -> None:
        self.room = room

    def write(self, pcm: np.ndarray) -> None:
        self.room._play(pcm)


class _Mic(AudioSource):
    realtime = False

    def __init__(self, room: SimulatedRoom) -> None:
        self.room = room
        self._i = 0

    def read(self) -> Frame | None:
        if self._i >= self.room.frames:
            return None
        frame = Frame(self._i, self.room.mic_frame(self._i), time.monotonic())
        self._i += 1
        return frame
