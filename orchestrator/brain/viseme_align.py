"""Phonemes aligned to the creature's own audio: the timing behind the mouth's look-ahead.

The words' phonemes (espeak-ng) are known; when each is said is not: Moshi gives a word's text
at the frame where it starts, and durations from a nominal table miss by tens of ms, which is
most of what the mouth got wrong. The audio knows: a stop's closure is near silence, an s is a
hiss, a vowel is loud with its energy low in the spectrum, a nasal quieter and lower still.

So the phoneme sequence is aligned to the audio in 10 ms hops with a left-to-right hidden
Markov model, decoded by Viterbi incrementally (each hop is one vectorised step over the
states). Each phoneme is two states (a diphthong's two shapes, or one shape twice: a minimum
of 20 ms) whose self-loop gives its nominal duration; an optional silence follows each word.
Emissions score three features per hop against the phoneme's broad class (:data:`CLASSES`):
the energy relative to the recent peak, the zero-crossing rate and the spectral tilt. A word's
states are appended when its text piece arrives, and its piece says it starts in that frame:
``WITHIN_HOPS`` later the path must be in it (earlier states die). The best path over the last
second, traced back from the newest hop, gives the phoneme segments; the tracker shows a frame
``lookahead_frames`` behind the newest, where the path has been settled by the audio after it.

Only audio already received is used: nothing here delays the creature's audio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affect.visemes import STRIP, Segment, VisemeSet, duration_factor, plan_word

HOP = 240  # samples: 10 ms at 24 kHz
HOP_MS = 10.0
HISTORY_HOPS = 64  # back-pointers kept: the path is traced over the last 1.2 s
MAX_STATES = 48  # states kept (old words fall off the front)
WITHIN_HOPS = 11  # a word's piece frame (8 hops) + 30 ms: by then the path is in the word
EMISSION_WEIGHT = 0.8  # the features' log-likelihood against the durations' (both log-probs)
PEAK_DECAY_DB = 0.05  # per hop: the recent peak falls 5 dB a second
NEG = -1e9

# The broad classes' features: (mean, sd) of the energy in dB below the recent peak, of the
# zero-crossing rate (per sample) and of the spectral tilt (dB: the first difference's energy
# over the signal's). Set by hand from the spread of each class in espeak-ng speech of other
# sentences than the benchmark's.
CLASSES = {
    "sil": ((-55.0, 10.0), (0.10, 0.30), (0.0, 8.0)),
    "vowel": ((-4.0, 6.0), (0.04, 0.05), (-11.0, 3.0)),
    "glide": ((-9.0, 7.0), (0.04, 0.05), (-15.0, 5.0)),
    "nasal": ((-14.0, 7.0), (0.03, 0.04), (-19.0, 4.0)),
    "stop": ((-30.0, 12.0), (0.15, 0.20), (-8.0, 10.0)),
    "fric": ((-18.0, 8.0), (0.40, 0.15), (1.0, 3.0)),
    "weak": ((-26.0, 10.0), (0.25, 0.20), (-10.0, 7.0)),
}
CLASS_NAMES = list(CLASSES)
_MEAN = np.array([[f[0] for f in CLASSES[c]] for c in CLASS_NAMES])
_SD = np.array([[f[1] for f in CLASSES[c]] for c in CLASS_NAMES])
_LOG_SD = np.log(_SD).sum(axis=1)
_SIL = CLASS_NAMES.index("sil")
_FIRST = {
    **dict.fromkeys("aɑæʌɐəɚɜɛeɪiɔɒoʊuɘɵœøy", "vowel"),
    **dict.fromkeys("wʍɹrlɫj", "glide"),
    **dict.fromkeys("mnŋɲ", "nasal"),
    **dict.fromkeys("pbtdkgɡʔɾc", "stop"),
    **dict.fromkeys("szʃʒ", "fric"),
    **dict.fromkeys("fvθðhx", "weak"),
}


def phone_class(phoneme: str) -> str:
    """The broad class of an espeak-ng phoneme (by its first symbol; affricates hiss)."""
    ph = phoneme.translate(STRIP).replace("ː", "")
    if ph.startswith(("tʃ", "dʒ")):
        return "fric"
    return _FIRST.get(ph[:1], "vowel")


def features(pcm: np.ndarray) -> np.ndarray:
    """Per 10 ms hop: energy (dBFS), zero-crossing rate, spectral tilt (dB)."""
    n = len(pcm) // HOP
    x = np.asarray(pcm[: n * HOP], dtype=np.float32).reshape(n, HOP)
    p = np.mean(x * x, axis=1) + 1e-12
    z = np.mean(np.diff(np.signbit(x), axis=1), axis=1)
    tilt = 10 * np.log10((np.mean(np.diff(x, axis=1) ** 2, axis=1) + 1e-12) / p)
    return np.stack([10 * np.log10(p), z, tilt], axis=1)


@dataclass(frozen=True)
class _State:
    viseme: str
    cls: int
    stay: float  # log self-loop probability
    word_first: bool


class PhoneAligner:
    """``add_word`` when a word's piece arrives (``extend_word`` for more of it), ``push`` each
    frame's audio, ``segments`` for the path so far."""

    def __init__(self, vs: VisemeSet) -> None:
        self.vs = vs
        self.states: list[_State] = []
        self.delta = np.zeros(0)  # Viterbi scores of the kept states (the best is 0)
        self.back: deque[tuple[int, np.ndarray]] = deque(maxlen=HISTORY_HOPS)
        self.vis: dict[int, str] = {}  # each state's viseme, by its index since the start
        self.offset = 0  # states dropped from the front
        self.deadlines: deque[tuple[int, int]] = deque()  # (hop, a word's first state)
        self.hop = 0
        self.peak = -30.0
        self._word_at = 0  # the newest word's first state (index since the start)
        self._word: list[str] = []  # and its phonemes
        self._word_hop = 0  # the hop its piece came at
        self._word_ms = 0.0  # its nominal length
        self.scale = 1.0  # the speaking rate: durations x this (learned from the pieces)
        self._append(_State(vs.rest, _SIL, float(np.log(0.97)), False), 0.0)

    # -- the model ---------------------------------------------------------------------------
    def _append(self, st: _State, score: float) -> None:
        self.vis[self.offset + len(self.states)] = st.viseme
        self.states.append(st)
        self.delta = np.append(self.delta, score)

    def _learn_rate(self) -> None:
        """The last word lasted until this piece came (to a frame): its length against its
        nominal one moves the speaking rate, as the tracker's words do; a pause (much longer
        than expected) says nothing about the rate."""
        timing = self.vs.spec.timing
        if self._word_ms <= 0:
            return
        r = (self.hop - self._word_hop) * HOP_MS / self._word_ms
        if r < 1.5 * self.scale:
            r = min(timing.max_scale, max(timing.min_scale, r))
            self.scale += timing.adapt * (r - self.scale)

    def _nominal_ms(self, phonemes: Sequence[str]) -> float:
        plan = plan_word(phonemes, 0.0, 1.0, self.vs)
        return plan[-1].end if plan else 0.0

    def _phoneme_states(self, phonemes: Sequence[str], first: bool) -> None:
        timing = self.vs.spec.timing
        for ph in phonemes:
            shapes = self.vs.visemes_of(ph)
            if not shapes:
                continue
            cls = CLASS_NAMES.index(phone_class(ph))
            subs = list(shapes) if len(shapes) == 2 else [shapes[0], shapes[0]]
            f = duration_factor(ph, timing) / len(subs)
            for name in subs:
                hops = max(1.0, self.vs[name].duration_ms * f * self.scale / HOP_MS)
                self._append(_State(name, cls, float(np.log(1 - 1 / (hops + 1))), first), NEG)
                first = False
        self._append(_State(self.vs.rest, _SIL, float(np.log(0.97)), False), NEG)  # a pause

    def add_word(self, phonemes: Sequence[str]) -> None:
        """A new word, starting in this frame: its states, then an optional pause."""
        self._learn_rate()
        self._word_hop = self.hop
        self._word_at = self.offset + len(self.states)
        self._word = list(phonemes)
        self._word_ms = self._nominal_ms(phonemes)
        self.deadlines.append((self.hop + WITHIN_HOPS, self._word_at))
        self._phoneme_states(phonemes, True)
        drop = len(self.states) - MAX_STATES
        if drop > 0:
            self.states = self.states[drop:]
            self.delta = self.delta[drop:]
            self.offset += drop
            for g in [g for g in self.vis if g < self.offset - MAX_STATES]:
                del self.vis[g]

    def extend_word(self, phonemes: Sequence[str]) -> None:
        """More of the newest word ("lo" after "Hel"), read again whole: the states of the
        phonemes it shares with what it was read as stay (with their scores), the rest are
        replaced."""
        keep = 0
        while keep < min(len(phonemes), len(self._word)) and phonemes[keep] == self._word[keep]:
            keep += 1
        local = self._word_at - self.offset
        if local < 0:  # the word fell off the front: nothing of it to extend
            return
        cut = local
        for ph in self._word[:keep]:
            cut += 2 if self.vs.visemes_of(ph) else 0
        scores = self.delta[cut:].max() if cut < len(self.delta) else NEG
        self.states = self.states[:cut]
        self.delta = self.delta[:cut]
        self._word = list(phonemes)
        self._word_ms = self._nominal_ms(phonemes)
        n = len(self.states)
        self._phoneme_states(phonemes[keep:], keep == 0)
        if len(self.states) > n:  # the path that was in a replaced state goes on from here
            self.delta[n] = max(self.delta[n], scores)

    # -- the audio -------------------------------------------------------------------------
    def push(self, pcm: np.ndarray) -> None:
        """A frame's audio, hop by hop: one Viterbi step each (the emissions of all its hops
        are scored at once)."""
        feats = features(pcm)
        rel = np.empty(len(feats))
        for i, e in enumerate(feats[:, 0]):
            self.peak = max(float(e), self.peak - PEAK_DECAY_DB)
            rel[i] = max(e - self.peak, -70.0)
        x = np.column_stack([rel, feats[:, 1], feats[:, 2]])
        ll = -0.5 * (((x[:, None, :] - _MEAN) / _SD) ** 2).sum(axis=2) - _LOG_SD  # hop x class
        emit = EMISSION_WEIGHT * ll[:, [s.cls for s in self.states]]  # hop x state
        stay = np.array([s.stay for s in self.states])
        move = np.log1p(-np.exp(stay))
        skip = move[:-2] + np.array([0.0 if s.word_first else NEG for s in self.states[2:]])
        idx = np.arange(len(self.states))
        c = np.full((3, len(self.states)), NEG)
        for h in range(len(feats)):
            while self.deadlines and self.deadlines[0][0] <= self.hop:
                self._enter(self.deadlines.popleft()[1])
            d = self.delta
            np.add(d, stay, out=c[0])  # stay
            np.add(d[:-1], move[:-1], out=c[1, 1:])  # the next state
            np.add(d[:-2], skip, out=c[2, 2:])  # into a word, past the pause
            bp = c.argmax(axis=0)
            self.delta = c[bp, idx] + emit[h]
            self.delta -= self.delta.max()
            self.back.append((self.offset, bp.astype(np.int8)))
            self.hop += 1

    def _enter(self, g: int) -> None:
        """The path is in the word from state ``g`` on: earlier states die (if none of the
        word's states can be reached, the path starts again at its first)."""
        local = g - self.offset
        if local <= 0:
            return
        if self.delta[local:].max() <= NEG / 2:
            self.delta[local] = 0.0
        self.delta[:local] = NEG

    def segments(self) -> list[Segment]:
        """The best path over the hops kept, as segments (ms on the frame clock)."""
        n = len(self.back)
        if n == 0:
            return []
        g = self.offset + int(np.argmax(self.delta))  # a state's index since the start
        path = [0] * n
        for i in range(n - 1, -1, -1):
            path[i] = g
            off, bp = self.back[i]
            local = g - off
            if 0 <= local < len(bp):
                g -= int(bp[local])
        t0 = (self.hop - n) * HOP_MS
        out: list[Segment] = []
        for i, st in enumerate(path):
            v = self.vis.get(st, self.vs.rest)
            a = t0 + i * HOP_MS
            if out and out[-1].viseme == v and out[-1].end == a:
                out[-1].end = a + HOP_MS
            else:
                out.append(Segment(v, a, a + HOP_MS))
        return out
