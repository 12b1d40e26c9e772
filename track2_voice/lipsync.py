"""RMS lip-sync: the creature's audio frame -> mouth opening in 0..1.

A dBFS window maps loudness to openness; a noise gate keeps breath and codec hiss from
twitching the mouth; one-pole smoothing opens faster than it closes, as real mouths do.
"""

from __future__ import annotations

import math

import numpy as np

from track2_voice.config import LipSyncConfig
from track2_voice.frames import FRAME_MS

DB_FLOOR = -120.0  # what digital silence reports instead of -inf


def rms_dbfs(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return DB_FLOOR
    ms = float(np.dot(pcm, pcm)) / pcm.size
    if ms <= 1e-12:
        return DB_FLOOR
    return max(DB_FLOOR, 10.0 * math.log10(ms))


def smoothing_alpha(time_constant_ms: float, step_ms: float = FRAME_MS) -> float:
    """Fraction of the gap closed per step for a one-pole filter with this time constant."""
    return 1.0 - math.exp(-step_ms / time_constant_ms)


class LipSync:
    def __init__(self, cfg: LipSyncConfig | None = None) -> None:
        self.cfg = cfg or LipSyncConfig()
        self._attack = smoothing_alpha(self.cfg.attack_ms)
        self._release = smoothing_alpha(self.cfg.release_ms)
        self._span = self.cfg.ceil_db - self.cfg.floor_db
        self.mouth = 0.0
        self.last_db = DB_FLOOR

    def target(self, db: float) -> float:
        if db < self.cfg.gate_db:
            return 0.0
        return min(1.0, max(0.0, (db - self.cfg.floor_db) / self._span))

    def update(self, pcm: np.ndarray) -> float:
        self.last_db = db = rms_dbfs(pcm)
        goal = self.target(db)
        alpha = self._attack if goal > self.mouth else self._release
        self.mouth += alpha * (goal - self.mouth)
        if self.mouth < 1e-3:
            self.mouth = 0.0
        self.mouth = min(1.0, max(0.0, self.mouth))
        return self.mouth
