"""Lip-sync on real speech: silence gives 0, speech moves the mouth, clipping stays <= 1."""

from __future__ import annotations

import numpy as np

from track2_voice.audio.devices import frames_of
from track2_voice.config import LipSyncConfig
from track2_voice.frames import FRAME_SAMPLES
from track2_voice.lipsync import LipSync, rms_dbfs


def run(pcm: np.ndarray, cfg: LipSyncConfig | None = None) -> np.ndarray:
    ls = LipSync(cfg)
    return np.array([ls.update(f) for f in frames_of(pcm)])


def test_silence_and_noise_below_the_gate_keep_the_mouth_closed():
    assert run(np.zeros(FRAME_SAMPLES * 20, np.float32)).max() == 0.0
    hiss = (np.random.default_rng(0).standard_normal(FRAME_SAMPLES * 20) * 10 ** (-65 / 20)).astype(
        np.float32
    )
    assert rms_dbfs(hiss) < -60
    assert run(hiss).max() == 0.0


def test_real_speech_moves_the_mouth(speech_pcm):
    mouth = run(speech_pcm)
    assert mouth.max() > 0.6
    assert (mouth == 0).any() or mouth.min() < 0.2  # it also closes between words / at the ends
    assert np.abs(np.diff(mouth)).sum() > 3.0  # it moves, not a constant


def test_clipped_audio_stays_within_one(speech_pcm):
    clipped = np.clip(speech_pcm * 50.0, -1.0, 1.0)
    square = np.sign(np.sin(np.arange(FRAME_SAMPLES * 10) * 0.05)).astype(np.float32) * 1.5
    for sig in (clipped, square):
        m = run(sig)
        assert m.max() <= 1.0 and m.min() >= 0.0


def test_attack_is_faster_than_release():
    loud = np.full(FRAME_SAMPLES, 0.5, np.float32)
    ls = LipSync()
    opened = ls.update(loud)
    for _ in range(10):
        ls.update(loud)
    closed = 1.0 - ls.update(np.zeros(FRAME_SAMPLES, np.float32))
    assert opened > closed  # one frame opens more than one frame closes


def test_db_window_maps_linearly_between_floor_and_ceiling():
    cfg = LipSyncConfig(floor_db=-50, ceil_db=-30, gate_db=-55)
    ls = LipSync(cfg)
    assert ls.target(-50) == 0.0 and ls.target(-30) == 1.0
    assert abs(ls.target(-40) - 0.5) < 1e-9
    assert ls.target(-56) == 0.0 and ls.target(0) == 1.0
