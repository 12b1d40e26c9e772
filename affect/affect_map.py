"""The affect map (the data of configs/affect.yaml): states and events -> a look. Pure: it
is handed the data and finds no files (``orchestrator.data_files`` reads them).

``parse_affect_map(raw, src, points)`` validates the data and resolves every entry to an
``Affect`` point. ``points`` (emotion -> (valence, arousal)) come from the face's presets, the
one place an emotion's point is written, so the face and the brain agree on where it sits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from affect.blend import Affect, clamp, scaled
from affect.presets import EKMAN
from track2_voice.common.errors import ConfigError

ENTRY_KEYS = {"emotion", "valence", "arousal", "intensity", "mood", "hold_s"}


class AffectMapError(ConfigError, ValueError):
    """A bad affect file; the message names the file and the key."""


@dataclass(frozen=True)
class EventLook:
    look: Affect
    hold_s: float


@dataclass(frozen=True)
class AffectMap:
    states: dict[str, Affect]
    events: dict[str, EventLook]
    ease_s: float = 0.35
    attack_s: float = 0.2
    release_s: float = 1.5
    presets: dict[str, tuple[float, float]] = field(default_factory=dict)


def _num(v: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise AffectMapError(f"{where}: expected a number (got {v!r})")
    if not lo <= v <= hi:
        raise AffectMapError(f"{where}: expected a value in [{lo}, {hi}] (got {v})")
    return float(v)


def _entry(raw: Any, where: str, presets: dict[str, tuple[float, float]]) -> tuple[Affect, float]:
    if not isinstance(raw, dict):
        raise AffectMapError(f"{where}: expected a mapping with 'emotion'")
    unknown = set(raw) - ENTRY_KEYS
    if unknown:
        raise AffectMapError(
            f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(ENTRY_KEYS)}"
        )
    emotion = raw.get("emotion")
    if emotion not in EKMAN:
        raise AffectMapError(f"{where}.emotion: expected one of {list(EKMAN)} (got {emotion!r})")
    intensity = _num(raw.get("intensity", 1.0), f"{where}.intensity", 0.0, 1.0)
    mood = raw.get("mood")
    base = scaled(emotion, presets[emotion], intensity, str(mood) if mood else None)
    v = _num(raw["valence"], f"{where}.valence", -1, 1) if "valence" in raw else base.valence
    a = _num(raw["arousal"], f"{where}.arousal", -1, 1) if "arousal" in raw else base.arousal
    hold = _num(raw.get("hold_s", 1.0), f"{where}.hold_s", 0.0)
    return Affect(emotion, clamp(v, -1, 1), clamp(a, -1, 1), base.mood), hold


def parse_affect_map(
    raw: dict[str, Any], src: str, points: dict[str, tuple[float, float]]
) -> AffectMap:
    """Validate affect-map data (``src`` names where it came from, for errors)."""
    missing = [e for e in EKMAN if e not in points]
    if missing:
        raise AffectMapError(f"{src}: the emotion presets lack {missing}")
    if "presets" in raw:
        raise AffectMapError(
            f"{src}: presets: an emotion's valence/arousal lives in the face presets "
            "(configs/emotions.yaml), not here"
        )
    timing = raw.get("timing") or {}
    states = {
        str(k): _entry(v, f"{src}: states.{k}", points)[0]
        for k, v in (raw.get("states") or {}).items()
    }
    if "idle" not in states:
        raise AffectMapError(f"{src}: states: an 'idle' entry is required")
    events = {
        str(k): EventLook(*_entry(v, f"{src}: events.{k}", points))
        for k, v in (raw.get("events") or {}).items()
    }
    return AffectMap(
        states=states,
        events=events,
        ease_s=_num(timing.get("ease_s", 0.35), f"{src}: timing.ease_s", 0.0),
        attack_s=_num(timing.get("attack_s", 0.2), f"{src}: timing.attack_s", 0.0),
        release_s=_num(timing.get("release_s", 1.5), f"{src}: timing.release_s", 0.0),
        presets=points,
    )
