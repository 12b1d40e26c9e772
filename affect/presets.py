"""Validate the emotion presets (the data of configs/emotions.yaml). Pure: it is handed the
data and finds no files (``orchestrator.data_files`` reads them).

The result is plain JSON-able data, served as-is to the face page:
``{"version": 1, "params": {name: {"min", "max", "doc"}}, "emotions": {name: {"valence",
"arousal", "face": {param: value}}}}``.
"""

from __future__ import annotations

import math
from typing import Any

from track2_voice.common.errors import ConfigError

EKMAN = ("neutral", "happy", "sad", "anger", "fear", "surprise", "disgust")
VA_RANGE = (-1.0, 1.0)


class PresetError(ConfigError, ValueError):
    """A preset file that cannot be used; the message names the file and the key."""


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(f"{where}: expected a finite number (got {value!r})")
    return float(value)


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise PresetError(f"{where}: expected a mapping (got {type(value).__name__})")
    return value


def _params(raw: Any, src: str) -> dict[str, dict[str, Any]]:
    params = {}
    for name, spec in _mapping(raw, f"{src}: params").items():
        where = f"{src}: params.{name}"
        spec = _mapping(spec, where)
        lo, hi = _num(spec.get("min"), f"{where}.min"), _num(spec.get("max"), f"{where}.max")
        if lo >= hi:
            raise PresetError(f"{where}: min ({lo}) must be below max ({hi})")
        params[str(name)] = {"min": lo, "max": hi, "doc": str(spec.get("doc", ""))}
    if not params:
        raise PresetError(f"{src}: params: expected at least one face parameter")
    return params


def _emotion(name: str, raw: Any, params: dict, src: str) -> dict[str, Any]:
    where = f"{src}: emotions.{name}"
    raw = _mapping(raw, where)
    unknown = set(raw) - {"valence", "arousal", "face"}
    if unknown:
        raise PresetError(
            f"{where}: unknown key(s) {sorted(unknown)}; expected valence, arousal, face"
        )
    out: dict[str, Any] = {}
    for axis in ("valence", "arousal"):
        v = _num(raw.get(axis), f"{where}.{axis}")
        if not VA_RANGE[0] <= v <= VA_RANGE[1]:
            raise PresetError(f"{where}.{axis}: expected a value in [-1, 1] (got {v})")
        out[axis] = v
    face = _mapping(raw.get("face"), f"{where}.face")
    missing = [p for p in params if p not in face]
    extra = [k for k in face if k not in params]
    if missing:
        raise PresetError(f"{where}.face: missing parameter(s) {missing}")
    if extra:
        raise PresetError(f"{where}.face: unknown parameter(s) {extra}; expected {list(params)}")
    out["face"] = {}
    for p, spec in params.items():
        v = _num(face[p], f"{where}.face.{p}")
        if not spec["min"] <= v <= spec["max"]:
            raise PresetError(
                f"{where}.face.{p}: expected a value in [{spec['min']}, {spec['max']}] (got {v})"
            )
        out["face"][p] = v
    return out


def parse_presets(data: dict[str, Any], src: str) -> dict[str, Any]:
    """Validate presets data (``src`` names where it came from, for errors); raise PresetError."""
    params = _params(data.get("params"), src)
    emotions_raw = _mapping(data.get("emotions"), f"{src}: emotions")
    missing = [e for e in EKMAN if e not in emotions_raw]
    if missing:
        raise PresetError(f"{src}: emotions: missing the Ekman preset(s) {missing}")
    emotions = {str(n): _emotion(str(n), e, params, src) for n, e in emotions_raw.items()}
    return {"version": int(data.get("version", 1)), "params": params, "emotions": emotions}


def preset_points(presets: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each emotion's point in the valence/arousal plane (its one home is the presets)."""
    return {k: (float(v["valence"]), float(v["arousal"])) for k, v in presets["emotions"].items()}
