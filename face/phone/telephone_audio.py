"""Telephone audio <-> the creature's audio: G.711 mu-law at 8 kHz <-> float32 at 24 kHz.

Why these parts: mu-law is what Twilio Media Streams (and most carriers' stream bridges) carry;
``audioop`` is the standard codec (the standard library's up to Python 3.12, the maintained
``audioop-lts`` port from 3.13 on: same module name).

Why not ``soxr`` here, although the rest of the project resamples with it: its streaming
resampler releases output in blocks (at 24 -> 8 kHz about 490 samples, 61 ms, every third or
fourth 80 ms frame; at 8 -> 24 kHz nothing for two 20 ms chunks, then 61 ms at once), so a
call would hear gaps unless the bridge buffered ~75 ms more. 24 kHz is exactly three times
8 kHz, so one linear-phase low-pass FIR (scipy's ``firwin``, Kaiser window) does both ways
with a fixed 4 ms delay, chunk by chunk: flat to 0.01 dB over 300-3400 Hz, -72 dB from 4 kHz
(``benchmarks/telephony.py`` measures the round trip).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

with warnings.catch_warnings():  # the standard library's copy warns that 3.13 removes it
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PHONE_RATE = 8_000
CREATURE_RATE = 24_000
RATIO = CREATURE_RATE // PHONE_RATE
CHUNK_MS = 20  # what Twilio sends and expects: 160 mu-law bytes per chunk
CHUNK_BYTES = PHONE_RATE * CHUNK_MS // 1000
PCM16_SCALE = 32768.0
FIR_TAPS = 191  # 4 ms of delay at 24 kHz
FIR_CUTOFF_HZ = 3700.0
FIR_KAISER_BETA = 7.0


@lru_cache(maxsize=1)
def lowpass() -> np.ndarray:
    """The anti-alias / anti-image filter at 24 kHz (unity gain in the pass band). scipy is
    imported when a call's first converter is made, not with this module: every ``creature``
    command loads the telephone bridge, and scipy.signal takes most of a second to import."""
    from scipy import signal

    return signal.firwin(
        FIR_TAPS, FIR_CUTOFF_HZ, fs=CREATURE_RATE, window=("kaiser", FIR_KAISER_BETA)
    )


def mulaw_to_float(data: bytes) -> np.ndarray:
    """Mu-law bytes -> float32 in [-1, 1) at the same rate."""
    return np.frombuffer(audioop.ulaw2lin(data, 2), dtype="<i2").astype(np.float32) / PCM16_SCALE


def float_to_mulaw(pcm: np.ndarray) -> bytes:
    x = np.clip(np.asarray(pcm, dtype=np.float64) * PCM16_SCALE, -32768, 32767)
    return audioop.lin2ulaw(np.round(x).astype("<i2").tobytes(), 2)


class Upsampler:
    """8 -> 24 kHz, streaming: zero-stuff by 3, then the low-pass (gain 3)."""

    def __init__(self) -> None:
        from scipy.signal import lfilter

        self._h = lowpass() * RATIO
        self._zi = np.zeros(FIR_TAPS - 1)
        self._lfilter = lfilter

    def __call__(self, x: np.ndarray) -> np.ndarray:
        up = np.zeros(x.size * RATIO)
        up[::RATIO] = x
        y, self._zi = self._lfilter(self._h, 1.0, up, zi=self._zi)
        return y.astype(np.float32)


class Downsampler:
    """24 -> 8 kHz, streaming: the low-pass, then every third sample (the phase carries over
    chunks of any length)."""

    def __init__(self) -> None:
        from scipy.signal import lfilter

        self._h = lowpass()
        self._zi = np.zeros(FIR_TAPS - 1)
        self._lfilter = lfilter
        self._phase = 0  # index in the next chunk of the next sample to keep

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y, self._zi = self._lfilter(self._h, 1.0, np.asarray(x, dtype=np.float64), zi=self._zi)
        out = y[self._phase :: RATIO]
        self._phase = (self._phase - x.size) % RATIO
        return out.astype(np.float32)


class TelephoneAudio:
    """One call's converters. ``decode`` takes what the caller said, ``encode`` what the
    creature says; both keep their filter's state between chunks."""

    def __init__(self) -> None:
        self._up = Upsampler()
        self._down = Downsampler()

    def decode(self, mulaw: bytes) -> np.ndarray:
        """8 kHz mu-law -> 24 kHz float32, three samples per byte."""
        return self._up(mulaw_to_float(mulaw))

    def encode(self, pcm: np.ndarray) -> bytes:
        """24 kHz float32 -> 8 kHz mu-law, one byte per three samples (over chunks)."""
        return float_to_mulaw(self._down(pcm))
