"""Visemes: espeak-ng phonemes for words, the data file, coarticulated blending, and the
per-frame track against the replay scene's real audio."""

from __future__ import annotations

import pytest

from affect.visemes import Segment, VisemeError, blend, dominant, parse_visemes, plan_word
from orchestrator.brain.face_state import NeutralFace, face_state
from orchestrator.brain.g2p import Phonemizer, clean_word
from orchestrator.brain.viseme_track import VisemeTracker
from orchestrator.config import load_config
from orchestrator.data_files import VISEMES_FILE, load_visemes
from orchestrator.runtime.visemes import build_viseme_tracker
from orchestrator.yaml_file import read_yaml_mapping
from tests.conftest import creature
from track2_voice.backends.replay import ReplayBackend
from track2_voice.common.errors import ConfigError
from track2_voice.events import FrameEvent
from track2_voice.frames import FRAME_MS, silence
from track2_voice.lipsync import LipSync


@pytest.fixture(scope="module")
def g2p() -> Phonemizer:
    return Phonemizer("en-us")


@pytest.fixture(scope="module")
def vs():
    return load_visemes()


def bare(phonemes) -> tuple[str, ...]:
    """Without stress marks (espeak-ng puts them on stressed vowels)."""
    return tuple(p.replace("ˈ", "").replace("ˌ", "") for p in phonemes)


def _listed(vs, phoneme: str) -> bool:
    """The map knows it (not the fallback for a symbol nobody listed)."""
    table = vs.spec.phonemes
    p = phoneme.replace("ˈ", "").replace("ˌ", "")
    return p in table or p.replace("ː", "") in table or p[:1] in table


# -- phonemes -------------------------------------------------------------------------------
def test_g2p_gives_the_phonemes_of_words(g2p) -> None:
    assert bare(g2p.phonemes("cup")) == ("k", "ʌ", "p")
    assert bare(g2p.phonemes(" Hello")) == ("h", "ə", "l", "oʊ")
    assert bare(g2p.phonemes("moon")) == ("m", "uː", "n")
    assert g2p.phonemes("five")[0] == "f" and "ˈaɪ" in g2p.phonemes("five")  # stressed


def test_g2p_reads_numbers_as_their_words(g2p) -> None:
    assert bare(g2p.phonemes("42")) == bare(g2p.phonemes("forty") + g2p.phonemes("two"))
    assert bare(g2p.phonemes("7")) == bare(g2p.phonemes("seven"))
    year = bare(g2p.phonemes("1999"))
    assert len(year) > 10 and year[:3] == ("n", "aɪ", "n")


def test_g2p_gives_plausible_phonemes_for_names_and_unknown_words(g2p, vs) -> None:
    for word in ("Kyutai", "Moshi", "zorblaxian", "Xq", "R2D2"):
        ph = g2p.phonemes(word)
        assert ph, word
        assert all(_listed(vs, p) for p in ph), (word, ph)
        assert any(vs[v].vowel for p in ph for v in vs.visemes_of(p)), (word, ph)
    assert g2p.phonemes("Moshi")[0] == "m"


def test_g2p_caches_each_word_once_whatever_its_punctuation(g2p) -> None:
    g = Phonemizer("en-us")
    assert g.phonemes("cup.") == g.phonemes(" cup,") == g.phonemes("Cup!")
    assert (g.lookups, g.misses) == (3, 1)
    assert g.phonemes("...") == () and clean_word(" 3.5,") == "3.5"


def test_every_phoneme_espeak_writes_for_english_is_in_the_map(g2p, vs) -> None:
    text = (
        "the quick brown fox jumps over the lazy dog while she measures the thin azure "
        "hedge, singing about joy, choice, pure hair, near a tower, four cars and her ring"
    )
    phonemes = [p for w in text.split() for p in g2p.phonemes(w)]
    missing = sorted({p for p in phonemes if not _listed(vs, p)})
    assert not missing


# -- the data file --------------------------------------------------------------------------
def test_viseme_file_errors_name_the_file_and_the_key(vs) -> None:
    data = read_yaml_mapping(VISEMES_FILE, "visemes", VisemeError)
    data["phonemes"]["p"] = "LIPS"
    with pytest.raises(VisemeError, match=r"my\.yaml: phonemes\.p: unknown viseme"):
        parse_visemes(data, "my.yaml")
    data = read_yaml_mapping(VISEMES_FILE, "visemes", VisemeError)
    data["visemes"]["AA"]["alpha"] = -1
    with pytest.raises(VisemeError, match=r"my\.yaml: visemes\.AA\.alpha"):
        parse_visemes(data, "my.yaml")
    assert vs.visemes_of("ˈaɪ") == ("AA", "I") and vs.visemes_of("iː") == ("I",)
    assert vs.visemes_of("q̃") == (vs.spec.fallback,)
    page = vs.page_data()
    assert set(page["shapes"]) == set(vs.names) and page["rest"] == "rest"


def test_a_bad_viseme_setting_is_one_line_and_exit_2(tmp_path) -> None:
    bad = tmp_path / "v.yaml"
    bad.write_text("version: 1\nrest: rest\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="face.visemes.file: .*v.yaml"):
        build_viseme_tracker(load_config(overrides={"face.visemes.file": str(bad)}))
    r = creature("demo", "--once", "--no-face", "--set", f"face.visemes.file={bad}", timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "face.visemes.file" in lines[0] and "Traceback" not in r.stderr
    with pytest.raises(ConfigError, match="text_lead_frames"):
        load_config(overrides={"face.visemes.text_lead_frames": {"mlx": -1}})
    cfg = load_config(overrides={"face.visemes.text_lead_frames": {"mlx": 2}})
    assert cfg.face.visemes.text_lead_frames == {"replay": 0, "mlx": 2, "torch": 0, "remote": 0}


# -- blending -------------------------------------------------------------------------------
def test_a_short_bilabial_inside_fast_speech_still_closes_the_lips(vs) -> None:
    # "ama" said fast: a 30 ms m between two open vowels, inside one 80 ms frame
    segs = [Segment("AA", 0, 30), Segment("MBP", 30, 60), Segment("AA", 60, 160)]
    w = blend(segs, 0, FRAME_MS, vs)
    assert dominant(w) == "MBP" and w["MBP"] > 0.5
    assert abs(sum(w.values()) - 1.0) < 1e-9


def test_lingual_consonants_borrow_the_lips_of_their_vowel(vs) -> None:
    # "too": the t is weak, the rounded vowel after it pulls the frame already
    segs = [Segment("CDGKNSTXYZ", 0, 50), Segment("U", 50, 200)]
    w = blend(segs, 0, FRAME_MS, vs)
    assert dominant(w) == "U"


def test_rounding_comes_ahead_of_a_rounded_vowel(vs) -> None:
    # the frame before "oo" already carries some U, and more than a spread vowel would
    rounded = blend([Segment("rest", -200, 80), Segment("U", 80, 200)], 0, FRAME_MS, vs)
    spread = blend([Segment("rest", -200, 80), Segment("I", 80, 200)], 0, FRAME_MS, vs)
    assert rounded["U"] > spread["I"] > 0.1


def test_plan_word_lays_phonemes_back_to_back_and_splits_diphthongs(vs) -> None:
    segs = plan_word(("h", "aɪ"), 100.0, 1.0, vs)
    assert [s.viseme for s in segs] == ["CDGKNSTXYZ", "AA", "I"]
    assert segs[0].start == 100.0 and all(a.end == b.start for a, b in zip(segs, segs[1:]))
    twice = plan_word(("h", "aɪ"), 100.0, 2.0, vs)
    assert twice[-1].end - 100.0 == pytest.approx(2 * (segs[-1].end - 100.0))
    stressed = plan_word(("h", "ˈaɪ"), 100.0, 1.0, vs)
    assert stressed[1].length == pytest.approx(segs[1].length * vs.spec.timing.stress_factor)


# -- the track against the replay scene ------------------------------------------------------
def _scene_frames() -> list[FrameEvent]:
    """The greeting scene as the fast loop sees it: the backend's frames, their loudness and
    their text pieces."""
    backend, lips, out = ReplayBackend("greeting"), LipSync(), []
    i = 0
    while not backend.finished:
        r = backend.step(silence())
        m = lips.update(r.pcm)
        out.append(FrameEvent(index=i, t=i * 0.08, mouth=m, rms_db=lips.last_db, text=r.text))
        i += 1
    return out


def test_visemes_fall_on_voiced_frames_of_the_replay_scene(vs, g2p) -> None:
    tracker = VisemeTracker(vs, g2p.phonemes, lead_frames=0)
    frames = _scene_frames()
    spoken, voiced_spoken, voiced, voiced_rest = 0, 0, 0, 0
    for f in frames:
        w = tracker.update(f)
        is_voiced = f.rms_db >= tracker.gate_db
        near_voice = is_voiced or any(
            g.rms_db >= tracker.gate_db for g in frames[max(0, f.index - 2) : f.index + 1]
        )
        if dominant(w) != vs.rest:
            spoken += 1
            voiced_spoken += near_voice
        if is_voiced:
            voiced += 1
            voiced_rest += dominant(w) == vs.rest
    assert spoken > 40 and voiced > 40
    assert voiced_spoken / spoken >= 0.9, (voiced_spoken, spoken)  # shapes only with a voice
    assert voiced_rest / voiced <= 0.15, (voiced_rest, voiced)  # a voice gets shapes


def test_the_track_keeps_the_words_in_their_order(vs, g2p) -> None:
    tracker = VisemeTracker(vs, g2p.phonemes, lead_frames=0)
    starts: list[tuple[str, float]] = []
    for f in _scene_frames():
        before = tracker.words
        tracker.update(f)
        assert tracker.words - before <= 1  # the scene's words fall in frames of their own
        if tracker.words > before:
            starts.append(tracker.word)
    scene = ReplayBackend("greeting").scene
    assert [t for t, _ in starts] == scene.text.split()
    times = [t for _, t in starts]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_bilabials_of_the_scene_close_the_lips_where_they_are_said(vs, g2p) -> None:
    # "I'm" and "Give me a moment": the m's are the lips' closures in those lines; a word's
    # frames run from its piece to the next word's piece (a last p may close on that frame)
    tracker = VisemeTracker(vs, g2p.phonemes, lead_frames=0)
    pieces, closed = [], set()
    for f in _scene_frames():
        if f.text:
            pieces.append((f.index, f.text.strip(" .,!?")))
        if dominant(tracker.update(f)) == "MBP":
            closed.add(f.index)
    spans = {
        w: range(k, (pieces[i + 1][0] if i + 1 < len(pieces) else k + 10) + 1)
        for i, (k, w) in enumerate(pieces)
    }
    closes = {w: any(k in closed for k in r) for w, r in spans.items()}
    assert closes["I'm"] and closes["me"] and closes["moment"]
    assert not closes["Hello"] and not closes["there"] and not closes["else"] and not closes["get"]


def test_the_text_lead_delays_the_shapes_by_that_many_frames(vs, g2p) -> None:
    frames = _scene_frames()
    now = VisemeTracker(vs, g2p.phonemes, lead_frames=0)
    later = VisemeTracker(vs, g2p.phonemes, lead_frames=2)
    a = [dominant(now.update(f)) for f in frames]
    b = [dominant(later.update(f)) for f in frames]
    first = next(i for i, v in enumerate(a) if v != "rest")
    assert next(i for i, v in enumerate(b) if v != "rest") == first + 2


def test_sub_word_pieces_are_read_as_one_word(vs, g2p) -> None:
    t = VisemeTracker(vs, g2p.phonemes)
    t.step(0, -20.0, " Hel")
    t.step(1, -20.0, "lo")
    assert t.words == 1 and t.word[0] == "Hello"
    t.step(2, -20.0, " cup")
    assert t.words == 2


# -- the face message -----------------------------------------------------------------------
async def test_the_face_state_carries_visemes_only_when_tracked(vs, g2p) -> None:
    f = FrameEvent(
        index=5, t=0.4, mouth=0.6, rms_db=-20.0, text=" moon", model_ms=1.0, overhead_ms=0.1
    )
    assert "visemes" not in face_state(f, speaking=True, connected=True).to_dict()
    face = NeutralFace(VisemeTracker(vs, g2p.phonemes))
    await face.handle(f)
    s = face.face_state(f).to_dict()
    assert s["index"] == 5 and dominant(s["visemes"]) == "MBP"
    assert abs(sum(s["visemes"].values()) - 1.0) < 0.01
    other = FrameEvent(
        index=6, t=0.48, mouth=0.6, rms_db=-20.0, text=None, model_ms=1.0, overhead_ms=0.1
    )
    assert "visemes" not in face.face_state(other).to_dict()  # not seen yet: no stale shapes
    cfg = load_config(overrides={"face.lipsync": "rms"})
    assert build_viseme_tracker(cfg) is None
