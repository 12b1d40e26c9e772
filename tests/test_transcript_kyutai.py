"""Kyutai's streaming STT in-process (the real ``moshi`` code) on a tiny random checkpoint in
the published STT layout: words with timestamps on the mic clock, reproducible, and a Moshi
checkpoint refused as not an STT one."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from track2_voice.audio.devices import frames_of
from track2_voice.config import KyutaiSttConfig, TranscriptConfig
from track2_voice.events import UserWord
from track2_voice.frames import FRAME_SECONDS
from track2_voice.transcript.base import RecognizerError
from track2_voice.transcript.worker import TranscriptWorker, start_transcript

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(24_000 * seconds))).astype(np.float32)


def hear(cfg: TranscriptConfig, pcm: np.ndarray, first_index: int = 0) -> list[UserWord]:
    got: list[UserWord] = []
    w = start_transcript(got.append, cfg, live=False)
    assert isinstance(w, TranscriptWorker)
    for i, f in enumerate(frames_of(pcm)):
        w.hear(first_index + i, time.monotonic(), f)
    w.flush()
    w.close()
    return got


def test_the_stt_checkpoint_is_in_the_published_layout(stt_tiny):
    cfg = json.loads((stt_tiny / "config.json").read_text())
    assert cfg["model_type"] == "stt" and cfg["dep_q"] == 0 and cfg["n_q"] == 32
    assert cfg["stt_config"]["audio_delay_seconds"] == 0.5
    for key in ("moshi_name", "mimi_name", "tokenizer_name", "mimi_config_name"):
        assert (stt_tiny / cfg[key]).is_file()


def test_kyutai_stt_in_process_gives_timed_words_on_the_mic_clock(stt_tiny):
    cfg = TranscriptConfig(backend="kyutai", kyutai=KyutaiSttConfig(hf_repo=str(stt_tiny)))
    pcm = noise(2.0)
    got = hear(cfg, pcm)
    final = [u for u in got if u.final]
    assert final, "the model wrote no word"
    assert all(u.source == "kyutai" for u in got)
    # a word's start is a step's time less the model's 0.5 s delay: a multiple of 80 ms
    for u in final:
        steps = (u.start + 0.5) / FRAME_SECONDS
        assert u.start == 0.0 or abs(steps - round(steps)) < 1e-6, u
        assert u.end > u.start
    assert [u.start for u in final] == sorted(u.start for u in final)
    # every final word was first shown as a partial with the same text and start
    partial = {(u.text, u.start) for u in got if not u.final}
    assert all((u.text, u.start) in partial for u in final)
    # greedy decoding: the same audio gives the same words; 100 frames later on the mic clock
    again = [u for u in hear(cfg, pcm, first_index=100) if u.final]
    assert [u.text for u in again] == [u.text for u in final]
    assert all(
        abs(b.start - a.start - 100 * FRAME_SECONDS) < 1e-6
        for a, b in zip(final, again)
        if a.start > 0
    )


def test_a_checkpoint_that_is_not_an_stt_one_is_one_clear_error(random_tiny):
    cfg = TranscriptConfig(backend="kyutai", kyutai=KyutaiSttConfig(hf_repo=str(random_tiny)))
    with pytest.raises(RecognizerError, match="expected an STT checkpoint"):
        start_transcript(lambda ev: None, cfg, live=False)


def test_an_stt_checkpoint_as_the_voice_is_one_clear_error(stt_tiny):
    """An STT model hears but never speaks: the voice backend says where it belongs."""
    from track2_voice.backends.base import BackendError
    from track2_voice.backends.torch_backend import TorchBackend
    from track2_voice.config import TorchConfig, VoiceConfig

    backend = TorchBackend(VoiceConfig(backend="torch", torch=TorchConfig(hf_repo=str(stt_tiny))))
    with pytest.raises(BackendError, match="voice.transcript.kyutai.hf_repo"):
        backend.start()
