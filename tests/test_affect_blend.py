"""Affect: preset lookup, valence/arousal blending with easing, decay back to the baseline."""

from __future__ import annotations

import pytest

from affect.affect_map import EKMAN, AffectMapError
from affect.blend import NEUTRAL, Affect, blend, decay, ease_in_out, envelope, progress
from affect.mixer import AffectMixer
from orchestrator.data_files import load_affect_map, load_presets


def test_easing_is_smooth_and_bounded():
    assert ease_in_out(0) == 0 and ease_in_out(1) == 1 and ease_in_out(0.5) == 0.5
    assert ease_in_out(-1) == 0 and ease_in_out(2) == 1
    xs = [ease_in_out(i / 20) for i in range(21)]
    assert xs == sorted(xs)
    assert ease_in_out(0.05) < 0.05  # slow start: no jerk
    assert progress(0.1, 0.0) == 1.0


def test_envelope_attacks_holds_and_releases():
    w = [envelope(t, 0.2, 1.0, 0.5) for t in (-0.1, 0.0, 0.1, 0.2, 0.8, 1.2, 1.45, 1.7, 5)]
    assert w[0] == 0 and w[1] == 0 and 0 < w[2] < 1 and w[3] == 1 and w[4] == 1
    assert w[5] == 1 and 0 < w[6] < 1 and w[7] == 0 and w[8] == 0


def test_blend_moves_in_the_plane_and_the_label_follows_the_heavier_side():
    a, b = Affect("neutral", 0, 0), Affect("happy", 0.8, 0.4)
    mid = blend(a, b, 0.5)
    assert (mid.valence, mid.arousal) == pytest.approx((0.4, 0.2)) and mid.emotion == "happy"
    assert blend(a, b, 0.4).emotion == "neutral"
    assert blend(a, b, 2.0) == b


def test_decay_returns_to_the_baseline():
    hot = Affect("anger", -0.6, 0.7)
    assert decay(hot, NEUTRAL, 0.0, 1.0) == hot
    half = decay(hot, NEUTRAL, 1.0, 1.0)
    assert half.valence == pytest.approx(-0.3) and half.arousal == pytest.approx(0.35)
    assert decay(hot, NEUTRAL, 20.0, 1.0).emotion == "neutral"


def test_the_shipped_map_resolves_states_and_events():
    m = load_affect_map()
    assert m.states["idle"].emotion == "neutral"
    assert m.states["acting"].mood == "focused"
    assert m.states["disconnected"].emotion in ("fear", "sad")
    assert m.events["tool_succeeded"].look.emotion == "happy"
    assert m.events["tool_failed"].look.emotion == "sad"
    happy = m.presets["happy"]
    assert m.events["tool_succeeded"].look.valence == pytest.approx(happy[0])


def test_an_emotions_point_has_one_home_the_face_presets():
    presets = load_presets()
    presets["emotions"]["happy"].update(valence=0.5, arousal=0.1)
    m = load_affect_map(presets=presets)
    assert m.events["tool_succeeded"].look.valence == pytest.approx(0.5)
    assert load_affect_map().presets["disgust"] == (
        load_presets()["emotions"]["disgust"]["valence"],
        load_presets()["emotions"]["disgust"]["arousal"],
    )


def test_bad_map_names_file_and_key(tmp_path):
    p = tmp_path / "affect.yaml"
    p.write_text("states:\n  idle: {emotion: joy}\n")
    with pytest.raises(AffectMapError, match=r"affect.yaml: states.idle.emotion: expected one of"):
        load_affect_map(p)
    p.write_text(
        "presets: {happy: {valence: 0.1, arousal: 0.1}}\nstates:\n  idle: {emotion: happy}\n"
    )
    with pytest.raises(AffectMapError, match=r"affect.yaml: presets: an emotion's valence"):
        load_affect_map(p)
    assert EKMAN[0] == "neutral"


def test_mixer_eases_to_a_state_and_an_event_decays_back_to_it():
    m = load_affect_map()
    mix = AffectMixer(m, t=0.0)
    mix.set_state("acting", 10.0)
    assert mix.sample(10.0) == m.states["idle"]  # eased, not jumped
    assert mix.sample(10.0 + m.ease_s) == m.states["acting"]
    mix.event("tool_succeeded", 20.0)
    hold = m.events["tool_succeeded"].hold_s
    assert mix.sample(20.0 + m.attack_s + hold / 2).emotion == "happy"
    mix.set_state("idle", 20.5)  # the task is done while the happy look holds
    end = 20.0 + m.attack_s + hold + m.release_s + 0.01
    assert mix.sample(end) == m.states["idle"]
