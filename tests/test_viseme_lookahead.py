"""The mouth's look-ahead: phonemes aligned to the creature's own audio (real espeak-ng speech
with its true phoneme timings), each frame shown ``lookahead_frames`` later, and the face
message naming the frame its shape is for."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from affect.visemes import dominant
from benchmarks.spoken_frames import spoken_frames
from orchestrator.brain.face_state import NeutralFace
from orchestrator.brain.g2p import Phonemizer
from orchestrator.brain.viseme_align import PhoneAligner, features, phone_class
from orchestrator.brain.viseme_track import VisemeTracker
from orchestrator.data_files import load_visemes
from track2_voice.devtools.espeak_truth import EspeakTruth
from track2_voice.events import FrameEvent
from track2_voice.frames import FRAME_SECONDS

TAIL = 6  # silent frames after the sentence, to bring the look-ahead's last shapes out
SENTENCE = "Bob made a big map of the moon, please pass me the purple pepper."


@pytest.fixture(scope="module")
def vs():
    return load_visemes()


@pytest.fixture(scope="module")
def g2p() -> Phonemizer:
    return Phonemizer("en-us")


@pytest.fixture(scope="module")
def spoken():
    return EspeakTruth("en-us", 170).speak(SENTENCE)


def shown(tracker: VisemeTracker, frames: list[FrameEvent]) -> dict[int, str]:
    """Frame index -> the shape shown for it."""
    out = {}
    for f in frames:
        w = tracker.update(f)
        if tracker.shown >= 0:
            out[tracker.shown] = dominant(w)
    return out


def truth(spoken, vs, n: int) -> list[str]:
    out = []
    for k in range(n):
        t = (k + 0.5) * FRAME_SECONDS
        cls = vs.rest
        for p in spoken.phonemes:
            if p.start <= t < p.end and vs.visemes_of(p.text):
                cls = vs.visemes_of(p.text)[0]
                break
        out.append(cls)
    return out


def accuracy(got: dict[int, str], want: list[str], rest: str) -> float:
    speech = [k for k, c in enumerate(want) if c != rest]
    return sum(got.get(k) == want[k] for k in speech) / len(speech)


def test_the_shape_shown_is_for_the_frame_lookahead_frames_back_and_the_face_says_which(
    vs, g2p, spoken
):
    tracker = VisemeTracker(vs, g2p.phonemes, lookahead_frames=2)
    face = NeutralFace(tracker)
    frames = spoken_frames(spoken, TAIL)
    for f in frames[:10]:
        asyncio.run(face.handle(f))
        assert tracker.index == f.index and tracker.shown == f.index - 2
        msg = face.face_state(f).to_dict()
        if f.index >= 2:
            assert msg["index"] == f.index - 2 and "visemes" in msg
        else:
            assert "visemes" not in msg  # nothing settled yet for a frame before the first


def test_aligned_to_the_audio_the_mouth_follows_real_speech_far_better_than_from_words_alone(
    vs, g2p, spoken
):
    frames = spoken_frames(spoken, TAIL)
    want = truth(spoken, vs, len(frames))
    planned = shown(VisemeTracker(vs, g2p.phonemes), frames)
    aligned = shown(VisemeTracker(vs, g2p.phonemes, lookahead_frames=1), frames)
    a_plan, a_aligned = accuracy(planned, want, vs.rest), accuracy(aligned, want, vs.rest)
    print(f"words alone {a_plan:.3f}, aligned {a_aligned:.3f}")
    assert a_aligned >= 0.6 and a_aligned >= a_plan + 0.1, (a_plan, a_aligned)
    # every m, b, p closes the lips in some frame while it is said
    for p in spoken.phonemes:
        if vs.visemes_of(p.text) == ("MBP",):
            ks = range(int(p.start / FRAME_SECONDS), int(p.end / FRAME_SECONDS - 1e-9) + 1)
            assert any(aligned.get(k) == "MBP" for k in ks), (p, [aligned.get(k) for k in ks])


def test_frames_without_their_audio_fall_back_to_timing_from_the_words(vs, g2p, spoken):
    tracker = VisemeTracker(vs, g2p.phonemes, lookahead_frames=2)
    frames = spoken_frames(spoken, TAIL, pcm=False)
    got = shown(tracker, frames)
    assert tracker.shown == tracker.index == frames[-1].index  # no look-ahead without audio
    assert "MBP" in got.values()


def test_sub_word_pieces_are_aligned_as_the_whole_word(vs, g2p):
    al = PhoneAligner(vs)
    al.add_word(g2p.phonemes("Hel"))
    before = len(al.states)
    al.extend_word(g2p.phonemes("Hello"))
    shapes = [s.viseme for s in al.states[1:]]
    assert shapes[-3:-1] == ["O", "U"] and len(al.states) > before  # ...l oʊ, then the pause
    assert shapes.count("L") == 2  # "l" once (two states), not twice


def test_the_features_tell_a_hiss_from_a_vowel_and_silence(vs):
    sr = 24000
    t = np.arange(2400) / sr
    vowel = 0.3 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 700 * t)
    hiss = 0.05 * np.random.default_rng(0).standard_normal(2400)
    fv, fh, fs = features(vowel), features(hiss), features(np.zeros(2400))
    assert fv[:, 1].mean() < 0.05 < 0.3 < fh[:, 1].mean()  # zero crossings
    assert fv[:, 2].mean() < -15 and fh[:, 2].mean() > 0  # spectral tilt
    assert fs[:, 0].max() < -100
    assert [phone_class(p) for p in ("ˈɑː", "m", "b", "s", "tʃ", "θ", "ɹ")] == [
        "vowel", "nasal", "stop", "fric", "fric", "weak", "glide",
    ]  # fmt: skip
