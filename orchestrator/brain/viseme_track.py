"""The viseme track: the creature's words and its audio frames -> mouth-shape weights per frame.

Moshi says each word as a text piece at a frame, and says it out loud from that frame plus its
text lead (``face.visemes.text_lead_frames``: the frames its audio lags its text in this
backend). A word's phonemes (espeak-ng, cached) are laid out from that frame at the speaking
rate the tracker has measured so far, then steered by the audio that follows: a word waits for
its voice to start, a vowel waits through a silent frame, the last shape holds while the voice
goes on, and a word the next one cuts short says its rest quickly. Each frame's weights are the
coarticulated blend of the shapes around it (``affect.visemes.blend``).

**Look-ahead** (``face.visemes.lookahead_frames`` > 0, frames that carry their audio): the
phonemes are instead aligned to the audio itself (``viseme_align``), and each update returns
the weights of the frame ``lookahead_frames`` behind the newest (:attr:`shown`): by then the
audio after it has settled where its phonemes are. The phone plays the creature's audio from a
buffer and shows the weights of the frame it is playing (by index), so the look-ahead costs the
audio nothing; it is audio the phone has received but not yet played.

It runs where the face state is composed (the brain's consumer on the I/O loop, or the
brainless face there), never on the fast loop: one update per frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from affect.visemes import Segment, VisemeSet, blend, plan_word
from orchestrator.brain.viseme_align import PhoneAligner
from track2_voice.events import FrameEvent
from track2_voice.frames import FRAME_MS

WINDOW_MS = 400.0  # segments further than this from a frame no longer pull it
END = float("inf")
Phonemes = Callable[[str], Sequence[str]]
SENTENCE_END = frozenset(".!?;:,…")


@dataclass
class _Word:
    text: str
    start: float
    nominal_ms: float  # its length at scale 1
    segments: list[Segment]
    voiced: bool = False
    last_voiced_end: float = 0.0
    waited: int = 0
    held: int = 0
    extended: int = 0

    @property
    def end(self) -> float:
        return self.segments[-1].end if self.segments else self.start


@dataclass
class VisemeTracker:
    """``update(frame)`` once per frame, in order; it returns (and keeps as :attr:`weights`)
    the frame's viseme weights."""

    vs: VisemeSet
    phonemes: Phonemes
    lead_frames: int = 0
    lookahead_frames: int = 0
    gate_db: float = -55.0
    frame_ms: float = FRAME_MS
    scale: float = 1.0
    weights: dict[str, float] = field(default_factory=dict)
    index: int = -1  # the newest frame seen
    shown: int = -1  # the frame :attr:`weights` are for (``index - lookahead_frames``)
    words: int = 0
    _pending: deque = field(default_factory=deque)
    _segments: list[Segment] = field(default_factory=list)
    _word: _Word | None = None
    _closed: bool = True  # the next piece starts a new word even without a leading space
    _aligner: PhoneAligner | None = None

    def __post_init__(self) -> None:
        self.weights = {self.vs.rest: 1.0}
        if self.lookahead_frames > 0:
            self._aligner = PhoneAligner(self.vs)

    # -- per frame --------------------------------------------------------------------------
    def update(self, frame: FrameEvent) -> dict[str, float]:
        if self._aligner is not None and frame.pcm is None:
            self._aligner = None  # frames without their audio: the planned timing it is
        if self._aligner is not None:
            return self._aligned(frame.index, frame.text, frame.pcm)
        return self.step(frame.index, frame.rms_db, frame.text)

    def _aligned(self, index: int, text: str | None, pcm) -> dict[str, float]:
        al = self._aligner
        assert al is not None
        self.index = index
        if text:
            self._pending.append((index + self.lead_frames, text))
        while self._pending and self._pending[0][0] <= index:
            self._piece(self._pending.popleft()[1], 0.0)
        al.push(pcm)
        self.shown = index - self.lookahead_frames
        s0 = self.shown * self.frame_ms
        segs = [
            s
            for s in al.segments()
            if s.end > s0 - WINDOW_MS and s.start < s0 + self.frame_ms + WINDOW_MS
        ]
        self.weights = (
            blend(segs, s0, s0 + self.frame_ms, self.vs, closure_share=0.5)
            if segs
            else {self.vs.rest: 1.0}
        )
        return self.weights

    def step(self, index: int, rms_db: float, text: str | None) -> dict[str, float]:
        t0 = index * self.frame_ms
        t1 = t0 + self.frame_ms
        self.index = self.shown = index
        if text:
            self._pending.append((index + self.lead_frames, text))
        offset = self.vs.spec.timing.piece_offset_ms
        while self._pending and self._pending[0][0] <= index:
            self._piece(self._pending.popleft()[1], t0 + offset)
        self._follow_voice(t0, t1, rms_db >= self.gate_db)
        lo, hi = t0 - WINDOW_MS, t1 + WINDOW_MS
        self._segments = [s for s in self._segments if s.end > lo]
        near = [s for s in self._segments if s.start < hi]
        self.weights = blend(near, t0, t1, self.vs) if near else {self.vs.rest: 1.0}
        return self.weights

    # -- words ------------------------------------------------------------------------------
    def _piece(self, piece: str, t: float) -> None:
        """A text piece: a new word when it starts with a space (or after punctuation), else
        more of the word being said; a piece holding several words (a scene's frame) is each."""
        for i, part in enumerate(piece.split()):
            starts = i > 0 or piece[:1].isspace() or self._closed or self._word is None
            if all(c in SENTENCE_END or not c.isalnum() for c in part):
                self._closed = True  # punctuation alone: the word is over
                continue
            if starts:
                self._start_word(part, t)
            else:
                self._extend_word(part, t)
            self._closed = part[-1] in SENTENCE_END

    @property
    def word(self) -> tuple[str, float] | None:
        """The word being said and where it starts (ms on the frame clock)."""
        return (self._word.text, self._word.start) if self._word is not None else None

    def _start_word(self, text: str, t: float) -> None:
        if self._aligner is not None:
            self._word = _Word(text, t, 0.0, [])
            self.words += 1
            self._aligner.add_word(self.phonemes(text))
            return
        start = t
        prev = self._word
        if prev is not None:
            start = self._finish(prev, t)
        phonemes = self.phonemes(text)
        nominal = plan_word(phonemes, 0.0, 1.0, self.vs)
        segs = plan_word(phonemes, start, self.scale, self.vs)
        self._word = _Word(text, start, nominal[-1].end if nominal else 0.0, segs)
        self.words += 1
        self._open_rest(start)
        self._segments.extend(segs)
        if segs:
            self._segments.append(Segment(self.vs.rest, segs[-1].end, END))

    def _extend_word(self, more: str, t: float) -> None:
        """A sub-word piece ("lo" after " Hel"): the word is re-read whole; what was already
        said stays, the rest of the plan is replaced."""
        w = self._word
        assert w is not None
        w.text += more
        phonemes = self.phonemes(w.text)
        if self._aligner is not None:
            self._aligner.extend_word(phonemes)
            return
        nominal = plan_word(phonemes, 0.0, 1.0, self.vs)
        w.nominal_ms = nominal[-1].end if nominal else 0.0
        fresh = plan_word(phonemes, w.start, self.scale, self.vs)
        kept = [s for s in w.segments if s.start < t]
        for s in kept:
            s.end = min(s.end, t)
        old = set(map(id, w.segments))
        self._segments = [s for s in self._segments if id(s) not in old and s.end != END]
        self._segments.extend(kept)
        tail = [Segment(s.viseme, max(s.start, t), s.end) for s in fresh if s.end > t]
        if not tail and fresh:  # the longer word is already over by the clock: say its end now
            tail = [Segment(fresh[-1].viseme, t, t + fresh[-1].length)]
        w.segments = kept + tail
        self._segments.extend(tail)
        if w.segments:
            self._segments.append(Segment(self.vs.rest, w.end, END))

    def _finish(self, w: _Word, t: float) -> float:
        """End word ``w`` because the next one starts at ``t``: learn the speaking rate from how
        long it really was, squeeze what it had left. Returns where the next word starts."""
        timing = self.vs.spec.timing
        if w.voiced and w.nominal_ms > 0:
            observed = min(t, w.last_voiced_end) - w.start
            if observed > 0:
                r = min(timing.max_scale, max(timing.min_scale, observed / w.nominal_ms))
                self.scale += timing.adapt * (r - self.scale)
        for s in w.segments:  # the shape being said when the next word comes ends there
            if s.start < t < s.end:
                s.end = t
        left = [s for s in w.segments if s.start >= t]
        said = sum(s.length for s in left)
        if said <= 0:
            return t
        k = min(said, timing.squeeze_ms) / said
        cursor = t
        for s in left:
            s.start, s.end = cursor, cursor + s.length * k
            cursor = s.end
        return cursor

    def _open_rest(self, start: float) -> None:
        """Close the open-ended rest after the last word at ``start``; a short pause gets none."""
        for s in self._segments:
            if s.end == END:
                s.end = start
        gap = self.vs.spec.timing.gap_ms
        self._segments = [
            s for s in self._segments if not (s.viseme == self.vs.rest and s.length < gap)
        ]

    # -- the audio that follows -------------------------------------------------------------
    def _follow_voice(self, t0: float, t1: float, voiced: bool) -> None:
        w = self._word
        if w is None or not w.segments:
            return
        timing = self.vs.spec.timing
        if voiced:
            w.voiced = True
            if w.start < t1:
                w.last_voiced_end = t1
            if w.end <= t0 and w.extended < timing.extend_frames:
                w.extended += 1  # the voice goes on: hold the last shape through this frame
                self._shift(w, t1 - w.end, from_index=len(w.segments) - 1, stretch=True)
            return
        if not w.voiced and w.start < t1 and w.waited < timing.wait_frames:
            w.waited += 1  # the word has not been heard yet: it waits for its voice
            self._shift(w, t1 - max(w.start, t0), from_index=0)
            return
        mid = (t0 + t1) / 2
        for i, s in enumerate(w.segments):
            if s.start <= mid < s.end:
                if self.vs[s.viseme].vowel and w.held < timing.hold_frames and w.voiced:
                    w.held += 1  # a vowel needs voice: it waits through the silence
                    self._shift(w, self.frame_ms, from_index=i)
                return

    def _shift(self, w: _Word, by: float, from_index: int, stretch: bool = False) -> None:
        if by <= 0:
            return
        if stretch:
            w.segments[from_index].end += by
        else:
            first = w.segments[from_index]
            first_start = first.start
            for s in w.segments[from_index:]:
                s.start += by
                s.end += by
            if from_index == 0:
                w.start += by
            elif first_start < first.start:  # the one before stays until this one starts
                w.segments[from_index - 1].end = first.start
        for s in self._segments:
            if s.end == END and s.viseme == self.vs.rest:
                s.start = w.end
