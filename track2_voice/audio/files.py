"""Audio files: any format libsndfile reads, as 24 kHz mono float32 (a truncated WAV is
read as far as it goes, with a warning), cut into frames, and written back as 16-bit WAV.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from track2_voice.common.errors import UserError
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)


class AudioInputError(UserError):
    """A user-facing problem with audio input or output (file, format, device)."""


def load_audio(path: str | Path) -> np.ndarray:
    """Read any file libsndfile knows, downmix to mono, resample to 24 kHz with soxr."""
    import soundfile as sf
    import soxr

    p = Path(path)
    if not p.exists():
        raise AudioInputError(f"{p}: no such audio file")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError variants
        raise AudioInputError(f"{p}: cannot read audio ({e})") from e
    if data.shape[0] == 0:
        raise AudioInputError(f"{p}: the file holds no audio samples")
    short = wav_shortfall(p)
    if short:
        log.warning(
            "%s: truncated WAV: the header promises %d more bytes than the file holds; "
            "playing the %d frames that are there",
            p,
            short,
            data.shape[0],
        )
    if rate < 8_000 or rate > 192_000:
        raise AudioInputError(f"{p}: sample rate {rate} Hz is outside 8000..192000 Hz")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if data.shape[1] > 1:
        log.info("%s: %d channels mixed down to mono", p, data.shape[1])
    if rate != SAMPLE_RATE:
        log.info("%s: resampling %d Hz -> %d Hz", p, rate, SAMPLE_RATE)
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def wav_shortfall(path: Path) -> int:
    """Bytes a RIFF/WAVE file's ``data`` chunk claims beyond the end of the file (0: whole, or
    not a WAV). libsndfile reads what is there without a word, so a cut-off download or a
    recorder killed mid-write would otherwise pass silently."""
    import struct

    try:
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0
            size = path.stat().st_size
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return 0
                name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"data":
                    if length == 0xFFFFFFFF:  # streaming writers leave it unknown
                        return 0
                    return max(0, f.tell() + length - size)
                f.seek(length + (length & 1), 1)
    except OSError:
        return 0


def frames_of(pcm: np.ndarray) -> list[np.ndarray]:
    """Split into whole frames; the last one is zero-padded."""
    n = -(-pcm.size // FRAME_SAMPLES)
    padded = np.zeros(n * FRAME_SAMPLES, dtype=np.float32)
    padded[: pcm.size] = pcm
    return list(padded.reshape(n, FRAME_SAMPLES))


def write_wav(path: str | Path, pcm: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), pcm, SAMPLE_RATE, subtype="PCM_16")
