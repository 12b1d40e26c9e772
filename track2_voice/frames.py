"""The frame contract: 24 kHz mono float32, 1920 samples (80 ms, 12.5 Hz)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 1_920
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
FRAME_MS = FRAME_SECONDS * 1000.0


@dataclass(slots=True)
class Frame:
    """One 80 ms frame of the user's audio, stamped when it became available."""

    index: int
    pcm: np.ndarray  # shape (FRAME_SAMPLES,), float32 in [-1, 1]
    t: float  # time.monotonic() at which the frame was complete


def silence() -> np.ndarray:
    return np.zeros(FRAME_SAMPLES, dtype=np.float32)


def check_frame(pcm: np.ndarray) -> np.ndarray:
    """Coerce to the contract or say exactly what is wrong."""
    arr = np.asarray(pcm, dtype=np.float32)
    if arr.ndim != 1 or arr.shape[0] != FRAME_SAMPLES:
        raise ValueError(
            f"audio frame must be mono with {FRAME_SAMPLES} samples, got shape {arr.shape}"
        )
    return arr
