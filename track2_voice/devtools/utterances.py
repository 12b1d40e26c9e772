"""The utterances a voice system is timed on: audio files read with the project's one
loader, each with where its speech ends (the last 10 ms window louder than ``speech_db``,
found from the file alone, so the reference does not depend on the system under test), cut
into the 20 ms chunks a microphone callback would hand over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from track2_voice.audio.devices import load_audio
from track2_voice.frames import SAMPLE_RATE

CHUNK_S = 0.020  # what the harness hands the system at a time, as a 20 ms mic callback would
WINDOW_S = 0.010  # resolution of the end-of-speech search and of the first-audio search
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class Utterance:
    name: str
    pcm: np.ndarray  # float32 mono at ``rate``
    rate: int
    speech_end_s: float  # end of the last voiced window, from the start of the file

    @property
    def chunk_samples(self) -> int:
        return int(round(CHUNK_S * self.rate))

    @property
    def last_voiced_chunk(self) -> int:
        """Index of the 20 ms chunk holding the last voiced sample."""
        return max(0, math.ceil(self.speech_end_s / CHUNK_S - 1e-9) - 1)

    def chunks(self) -> list[np.ndarray]:
        n = self.chunk_samples
        padded = np.zeros(-(-self.pcm.size // n) * n, np.float32)
        padded[: self.pcm.size] = self.pcm
        return list(padded.reshape(-1, n))


def level_db(pcm: np.ndarray) -> float:
    ms = float(np.dot(pcm, pcm)) / pcm.size if pcm.size else 0.0
    return 10.0 * math.log10(ms) if ms > 1e-12 else -120.0


def speech_end_s(pcm: np.ndarray, rate: int, speech_db: float) -> float:
    """Seconds from the start of ``pcm`` to the end of its last window above ``speech_db``."""
    win = int(round(WINDOW_S * rate))
    loud = [i for i in range(pcm.size // win) if level_db(pcm[i * win : (i + 1) * win]) > speech_db]
    return ((loud[-1] + 1) * win if loud else pcm.size) / rate


def load_utterance(path: str | Path, rate: int, speech_db: float = -40.0) -> Utterance:
    """Read any audio file (the project's one loader), find its end of speech, resample."""
    pcm = load_audio(path)
    end = speech_end_s(pcm, SAMPLE_RATE, speech_db)
    if rate != SAMPLE_RATE:
        import soxr

        pcm = soxr.resample(pcm, SAMPLE_RATE, rate, quality="HQ").astype(np.float32)
    return Utterance(Path(path).name, np.ascontiguousarray(pcm, np.float32), rate, end)


def find_utterances(paths: list[str | Path]) -> list[Path]:
    """Files given directly, or every audio file in the given directories, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in AUDIO_EXTS))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such utterance file or directory")
    if not out:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTS)}) in {paths}")
    return out
