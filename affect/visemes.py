"""Visemes: phonemes -> the visibly distinct mouth shapes, blended with coarticulation.

Pure functions over the data of ``configs/visemes.yaml`` (validated here, read by
``orchestrator.data_files``). Why dominance functions (Cohen & Massaro, 1993): a mouth never
jumps from shape to shape; each phoneme pulls the lips toward its shape with a strength that
falls off with distance in time, so lingual consonants (t, n, k) borrow the lips of their
vowels, a rounded vowel rounds the lips ahead of time, and a bilabial (m, b, p) still closes
them inside fast speech because its pull is strong and local. A frame's weights are those pulls,
normalized (and for "hold: max" shapes, taken at their strongest point of the frame).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from track2_voice.common.errors import ConfigError
from track2_voice.common.settings import Strict

STRIP = str.maketrans("", "", "ˈˌ̩̯.-")  # stress, syllabic and non-syllabic marks
LENGTH = "ː"


class VisemeError(ConfigError, ValueError):
    """A viseme file that cannot be used; the message names the file and the key."""


class _Strict(Strict):
    """The viseme file's data: strict like every settings model, and frozen (shared read-only)."""

    model_config = ConfigDict(frozen=True)


class Shape(_Strict):
    width: float = Field(ge=0.2, le=1.6)
    up: float = Field(ge=0, le=40)
    down: float = Field(ge=0, le=60)
    round: float = Field(ge=0, le=1)
    teeth: float = Field(0.0, ge=0, le=1)
    tongue: float = Field(0.0, ge=0, le=1)


class VisemeSpec(_Strict):
    alpha: float = Field(gt=0, le=10)
    theta_before: float = Field(gt=0, le=1)
    theta_after: float = Field(gt=0, le=1)
    duration_ms: float = Field(gt=0, le=1000)
    vowel: bool = False
    hold: Literal["mean", "max"] = "mean"
    shape: Shape


class BlendSpec(_Strict):
    subsamples: int = Field(8, ge=1, le=64)
    sharpness: float = Field(1.0, ge=0.5, le=4)
    min_weight: float = Field(0.02, ge=0, lt=0.5)


class TimingSpec(_Strict):
    diphthong_share: float = Field(0.6, gt=0.2, le=1)
    stress_factor: float = Field(1.7, ge=1, le=4)
    length_factor: float = Field(1.15, ge=1, le=4)
    min_scale: float = Field(0.5, gt=0)
    max_scale: float = Field(2.2, gt=0)
    adapt: float = Field(0.35, ge=0, le=1)
    squeeze_ms: float = Field(30.0, ge=0, le=200)
    piece_offset_ms: float = Field(40.0, ge=0, le=80)
    wait_frames: int = Field(3, ge=0, le=25)
    hold_frames: int = Field(2, ge=0, le=25)
    extend_frames: int = Field(3, ge=0, le=25)
    gap_ms: float = Field(60.0, ge=0, le=1000)

    @model_validator(mode="after")
    def _range(self) -> TimingSpec:
        if self.max_scale < self.min_scale:
            raise ValueError(f"max_scale ({self.max_scale}) is below min_scale ({self.min_scale})")
        return self


class VisemeFile(_Strict):
    version: Literal[1]
    rest: str
    fallback: str
    blend: BlendSpec = BlendSpec()
    timing: TimingSpec = TimingSpec()
    jaw_min: float = Field(0.45, ge=0, le=1)
    visemes: dict[str, VisemeSpec]
    phonemes: dict[str, str | list[str]]


@dataclass(frozen=True)
class VisemeSet:
    """The validated data, with the lookups the tracker and the page need."""

    spec: VisemeFile

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.spec.visemes)

    @property
    def rest(self) -> str:
        return self.spec.rest

    def __getitem__(self, name: str) -> VisemeSpec:
        return self.spec.visemes[name]

    def visemes_of(self, phoneme: str) -> tuple[str, ...]:
        """One phoneme's shapes: as listed, else without its length mark, else by its first
        symbol (a rare diacritic must not lose the phoneme), else the fallback."""
        table = self.spec.phonemes
        ph = phoneme.translate(STRIP)
        for key in (ph, ph.replace(LENGTH, ""), ph[:1]):
            target = table.get(key)
            if target is not None:
                return (target,) if isinstance(target, str) else tuple(target)
        return (self.spec.fallback,) if ph else ()

    def page_data(self) -> dict[str, Any]:
        """What the face page draws with: the shapes, the rest shape and jaw_min (JSON-able)."""
        return {
            "version": self.spec.version,
            "rest": self.rest,
            "jaw_min": self.spec.jaw_min,
            "shapes": {n: v.shape.model_dump() for n, v in self.spec.visemes.items()},
        }


def parse_visemes(data: Any, source: str) -> VisemeSet:
    """Validate the data of a viseme file; raises VisemeError naming ``source`` and the key."""
    try:
        spec = VisemeFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top)"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        tail = "" if isinstance(got, dict) else f" (got {got!r})"
        raise VisemeError(f"{source}: {loc}: {msg}{tail}") from None
    names = sorted(spec.visemes)
    for key in ("rest", "fallback"):
        if getattr(spec, key) not in spec.visemes:
            raise VisemeError(f"{source}: {key}: {getattr(spec, key)!r} is not one of {names}")
    for ph, target in spec.phonemes.items():
        targets = [target] if isinstance(target, str) else target
        if not 1 <= len(targets) <= 2:
            raise VisemeError(f"{source}: phonemes.{ph}: expected one viseme or two ({targets})")
        bad = [t for t in targets if t not in spec.visemes]
        if bad:
            raise VisemeError(f"{source}: phonemes.{ph}: unknown viseme(s) {bad}; known: {names}")
    return VisemeSet(spec)


@dataclass(slots=True)
class Segment:
    """One shape held from ``start`` to ``end`` (ms on the tracker's clock)."""

    viseme: str
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def duration_factor(phoneme: str, timing: TimingSpec) -> float:
    """A stressed phoneme (ˈ; ˌ halfway) lasts longer, and so does a long one (ː)."""
    f = 1.0
    if "ˈ" in phoneme:
        f *= timing.stress_factor
    elif "ˌ" in phoneme:
        f *= (1.0 + timing.stress_factor) / 2
    if LENGTH in phoneme:
        f *= timing.length_factor
    return f


def plan_word(
    phonemes: Sequence[str], start_ms: float, scale: float, vs: VisemeSet
) -> list[Segment]:
    """A word's phonemes as back-to-back segments from ``start_ms``, each as long as its
    shape's nominal duration (longer when stressed or long) times ``scale``; a diphthong's two
    shapes share its time."""
    out: list[Segment] = []
    t = start_ms
    timing = vs.spec.timing
    for ph in phonemes:
        shapes = vs.visemes_of(ph)
        f = scale * duration_factor(ph, timing) * (timing.diphthong_share if len(shapes) > 1 else 1)
        for name in shapes:
            d = vs[name].duration_ms * f
            out.append(Segment(name, t, t + d))
            t += d
    return out


def _pull(spec: VisemeSpec, seg: Segment, t: float) -> float:
    if t < seg.start:
        return spec.alpha * math.exp(-spec.theta_before * (seg.start - t))
    if t > seg.end:
        return spec.alpha * math.exp(-spec.theta_after * (t - seg.end))
    return spec.alpha


def weights_at(segments: Iterable[Segment], t: float, vs: VisemeSet) -> dict[str, float]:
    """The normalized pull of every shape at one instant (rest alone when nothing pulls)."""
    pulls: dict[str, float] = {}
    for seg in segments:
        p = _pull(vs[seg.viseme], seg, t)
        pulls[seg.viseme] = pulls.get(seg.viseme, 0.0) + p
    total = sum(pulls.values())
    if total <= 1e-9:
        return {vs.rest: 1.0}
    return {k: v / total for k, v in pulls.items()}


def blend(
    segments: Sequence[Segment], t0: float, t1: float, vs: VisemeSet, closure_share: float = 0.0
) -> dict[str, float]:
    """One frame's weights over [t0, t1): the instant weights at evenly spaced points, averaged
    (a "hold: max" shape takes the share it peaks at: a closure that happens shows), sharpened,
    normalized, small ones dropped.

    ``closure_share``: a closure takes its peak share only in a frame that holds at least this
    share of it (or of the frame). 0 (any overlap) hedges timings that are guesses; with timings
    measured on the audio, 0.5 shows each closure where most of it is, not in both frames it
    touches (a vowel beside it keeps its frame)."""
    b = vs.spec.blend
    n = b.subsamples
    acc: dict[str, float] = {}
    for i in range(n):
        w = weights_at(segments, t0 + (t1 - t0) * (i + 0.5) / n, vs)
        for k, v in w.items():
            acc[k] = acc.get(k, 0.0) + v / n
    # a closure said inside this frame takes the share it peaks at while it is said
    held: dict[str, float] = {}
    for seg in segments:
        if vs[seg.viseme].hold == "max" and seg.start < t1 and seg.end > t0:
            lo, hi = max(seg.start, t0), min(seg.end, t1)
            if hi - lo < closure_share * min(seg.length, t1 - t0):
                continue  # most of the closure is in a neighbouring frame: it shows there
            w = weights_at(segments, (lo + hi) / 2, vs).get(seg.viseme, 0.0)
            held[seg.viseme] = max(held.get(seg.viseme, 0.0), w, acc.get(seg.viseme, 0.0))
    if held:
        share = min(1.0, sum(held.values()))
        free = sum(v for k, v in acc.items() if k not in held)
        acc = {
            k: held[k] if k in held else (1.0 - share) * v / free if free > 0 else 0.0
            for k, v in acc.items()
        }
    if b.sharpness != 1.0:
        acc = {k: v**b.sharpness for k, v in acc.items()}
    total = sum(acc.values())
    out = {k: v / total for k, v in acc.items() if v / total >= b.min_weight}
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}


def dominant(weights: dict[str, float]) -> str:
    """The shape with the largest weight (what the evaluation compares with the truth)."""
    return max(weights.items(), key=lambda kv: kv[1])[0]
