"""Valence/arousal blending with easing over time, and decay back to a baseline. Pure.

A face's look is a *baseline* (the state's look, eased in when the state changes) plus at
most one *transient* (an event's look: attack, hold, release back to the baseline). Every
function here is a function of its arguments and a time stamp: no clocks, no I/O, no project
imports, so the same numbers come out in tests, the face and the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LABEL_SWITCH = 0.5  # the emotion label follows whichever side of a blend weighs more


@dataclass(frozen=True)
class Affect:
    emotion: str
    valence: float
    arousal: float
    mood: str | None = None


NEUTRAL = Affect("neutral", 0.0, 0.0)


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def ease_in_out(x: float) -> float:
    """Smoothstep: 0 at 0, 1 at 1, flat at both ends (no visible jerk)."""
    x = clamp(x)
    return x * x * (3.0 - 2.0 * x)


def progress(elapsed: float, duration: float) -> float:
    """Eased 0..1 progress of a move lasting ``duration`` seconds."""
    if duration <= 0:
        return 1.0 if elapsed >= 0 else 0.0
    return ease_in_out(elapsed / duration)


def envelope(elapsed: float, attack_s: float, hold_s: float, release_s: float) -> float:
    """Weight of a passing look: eased in over attack, 1 for hold, eased out over release."""
    if elapsed < 0:
        return 0.0
    if elapsed < attack_s:
        return progress(elapsed, attack_s)
    elapsed -= attack_s
    if elapsed < hold_s:
        return 1.0
    return 1.0 - progress(elapsed - hold_s, release_s)


def blend(a: Affect, b: Affect, w: float) -> Affect:
    """``a`` moved towards ``b`` by ``w`` (0..1) in the valence/arousal plane."""
    w = clamp(w)
    side = b if w >= LABEL_SWITCH else a
    return Affect(
        side.emotion,
        a.valence + (b.valence - a.valence) * w,
        a.arousal + (b.arousal - a.arousal) * w,
        side.mood,
    )


def scaled(
    emotion: str, preset: tuple[float, float], intensity: float = 1.0, mood: str | None = None
) -> Affect:
    """An emotion's preset point scaled from neutral by ``intensity``."""
    k = clamp(intensity)
    return Affect(emotion, preset[0] * k, preset[1] * k, mood)


def decay(point: Affect, baseline: Affect, elapsed: float, half_life_s: float) -> Affect:
    """Exponential decay of ``point`` back to ``baseline`` (for looks with no fixed hold)."""
    if half_life_s <= 0:
        return baseline
    remaining = math.pow(0.5, max(0.0, elapsed) / half_life_s)
    return blend(baseline, point, remaining)


@dataclass(frozen=True)
class Baseline:
    """The state's look, eased from ``start`` to ``target`` from ``t0`` over ``ease_s``."""

    start: Affect
    target: Affect
    t0: float
    ease_s: float

    def at(self, t: float) -> Affect:
        return blend(self.start, self.target, progress(t - self.t0, self.ease_s))


@dataclass(frozen=True)
class Transient:
    """An event's passing look."""

    look: Affect
    t0: float
    attack_s: float
    hold_s: float
    release_s: float

    def weight(self, t: float) -> float:
        return envelope(t - self.t0, self.attack_s, self.hold_s, self.release_s)

    def over(self, t: float) -> bool:
        return t - self.t0 >= self.attack_s + self.hold_s + self.release_s


def sample(baseline: Baseline, transient: Transient | None, t: float) -> Affect:
    """The look at time ``t``."""
    base = baseline.at(t)
    if transient is None:
        return base
    return blend(base, transient.look, transient.weight(t))


def retarget(baseline: Baseline, target: Affect, t: float, ease_s: float) -> Baseline:
    """A new state's look, eased from wherever the baseline is now (no jump)."""
    return Baseline(baseline.at(t), target, t, ease_s)
