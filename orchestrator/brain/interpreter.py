"""The creature as an interpreter (``mode: interpret``): who is speaking, what the translation
says, and how far it lags the visitor.

A translation model (Hibiki) hears the visitor and speaks the translation, so the creature's
voice *is* the translation and the mouth follows it as in a conversation. What changes is
what the face shows and what the record keeps:

- **who speaks**: the visitor (the source-speech detector on the mic), the interpreter (the
  creature's voice, by the same :class:`SpeakingDetector` as the face's ``speaking``), both at
  once (simultaneous translation overlaps) or nobody;
- **a caption**: the translated text of the passage being spoken, held ``caption_hold_s``
  after it ends;
- **a passage** runs from the visitor's first detected speech to the model's end of passage
  (Hibiki's EOS, a ``passage_end`` event) or, for a model that never says it, to a quiet gap of
  ``passage_gap_s`` after both stopped. Its first translated audio is a ``translation_started``
  line and its end a ``translation`` line with the timing, both in the session record.

All times are the frames' clock (``FrameEvent.t``), so the figures are the creature's own,
whatever runs the model (in-process, a remote server, a batched model server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from orchestrator.brain.events import PassageTranslated, TranslationStarted
from orchestrator.brain.speaking import SPEAKING_MOUTH
from orchestrator.slow_config import InterpretConfig
from track2_voice.events import (
    Event,
    FrameEvent,
    LoopStopped,
    PassageEnded,
    UserSpeechEnded,
    UserSpeechStarted,
)

MAX_PASSAGE_CHARS = 2000  # what a passage keeps of its text (the record says how much it cut)


class Speaker(str, Enum):
    """Who is speaking now, as the face shows it (``speaker`` in the face message)."""

    NOBODY = "nobody"
    VISITOR = "visitor"
    INTERPRETER = "interpreter"
    BOTH = "both"

    @classmethod
    def of(cls, visitor: bool, interpreter: bool) -> Speaker:
        if visitor and interpreter:
            return cls.BOTH
        return cls.VISITOR if visitor else cls.INTERPRETER if interpreter else cls.NOBODY


class PassageEnd(str, Enum):
    EOS = "eos"  # the model's end-of-passage token
    QUIET = "quiet"  # passage_gap_s of quiet on both sides (a model that never says EOS)
    SESSION = "session"  # the session stopped mid-passage


@dataclass
class Passage:
    number: int
    source_start_t: float | None  # the visitor's speech as detected (None: none was heard)
    source_end_t: float | None = None  # the end of their voiced audio
    first_audio_t: float | None = None  # the first frame of translated voice
    first_text_t: float | None = None
    last_activity_t: float = 0.0  # the last frame anyone spoke in
    lag_ms: float | None = None  # first translated audio after the source speech
    said: str = ""  # the translation so far (its newest MAX_PASSAGE_CHARS)
    cut_chars: int = 0  # what was cut from its start

    def add(self, piece: str) -> None:
        """Bounded: a model that never ends a passage must not grow it without limit."""
        self.said += piece
        if len(self.said) > MAX_PASSAGE_CHARS:
            cut = len(self.said) - MAX_PASSAGE_CHARS
            self.said, self.cut_chars = self.said[cut:], self.cut_chars + cut

    @property
    def text(self) -> str:
        return self.said.strip()


Emit = Callable[[Event], None]


class Interpreter:
    """Feed it every event (``handle``), then ask for ``speaker`` and ``caption``; it emits
    the passage events through ``emit`` (the brain's, so they are stamped and recorded)."""

    def __init__(self, cfg: InterpretConfig, emit: Emit) -> None:
        self.cfg = cfg
        self._emit = emit
        self.passage: Passage | None = None
        self.passages = 0
        self.visitor = False
        self.interpreter = False
        self._last: Passage | None = None  # the passage whose caption may still show
        self._last_end_t = 0.0
        self._now = 0.0

    # -- events in -------------------------------------------------------------------------
    def handle(self, ev: Event, interpreter_speaking: bool) -> None:
        """One event; ``interpreter_speaking`` is the face's answer for the creature's voice."""
        if isinstance(ev, UserSpeechStarted):
            self.visitor = True
            if self.passage is None:
                self._open(ev.t)
            elif self.passage.source_start_t is None:
                self.passage.source_start_t = ev.t
            self.passage.source_end_t = None
            self.passage.last_activity_t = ev.t
        elif isinstance(ev, UserSpeechEnded):
            self.visitor = False
            if self.passage is not None:
                end = ev.t - (ev.silence_ms or 0.0) / 1000.0
                self.passage.source_end_t = end
                self.passage.last_activity_t = max(self.passage.last_activity_t, end)
        elif isinstance(ev, PassageEnded):
            if self.passage is not None:
                self._close(ev.t, PassageEnd.EOS)
        elif isinstance(ev, FrameEvent):
            self._frame(ev, interpreter_speaking)
        elif isinstance(ev, LoopStopped) and self.passage is not None:
            self._close(self._now, PassageEnd.SESSION)  # recorded as it stands

    def _frame(self, ev: FrameEvent, speaking: bool) -> None:
        self._now = ev.t
        self.interpreter = speaking
        self.visitor = ev.user_speaking  # the detector's state when the frame was made
        voiced = ev.mouth >= SPEAKING_MOUTH
        if (voiced or ev.text) and self.passage is None:
            self._open(None)  # a translation with no source speech detected (a missed onset)
        p = self.passage
        if p is None:
            return
        if voiced and p.first_audio_t is None:
            p.first_audio_t = ev.t
            if p.source_start_t is not None:
                p.lag_ms = _ms((ev.t - p.source_start_t) * 1000.0)
            self._emit(
                TranslationStarted(passage=p.number, source_t=p.source_start_t, lag_ms=p.lag_ms)
            )
        if ev.text:
            if p.first_text_t is None:
                p.first_text_t = ev.t
            p.add(ev.text)
        if voiced or ev.text or ev.user_speaking:
            p.last_activity_t = ev.t
        elif ev.t - p.last_activity_t >= self.cfg.passage_gap_s and not self.visitor:
            self._close(ev.t, PassageEnd.QUIET)

    # -- passages --------------------------------------------------------------------------
    def _open(self, source_t: float | None) -> None:
        self.passages += 1
        self.passage = Passage(self.passages, source_t, last_activity_t=source_t or self._now)

    def _close(self, t: float, why: PassageEnd) -> None:
        p, self.passage = self.passage, None
        assert p is not None
        self._last, self._last_end_t = p, t
        self._emit(
            PassageTranslated(
                passage=p.number,
                text=p.text,
                source_start_t=_t(p.source_start_t),
                source_end_t=_t(p.source_end_t),
                first_audio_t=_t(p.first_audio_t),
                first_text_t=_t(p.first_text_t),
                end_t=round(t, 6),
                lag_ms=p.lag_ms,
                ended_by=why.value,
                cut_chars=p.cut_chars,
            )
        )

    # -- the face --------------------------------------------------------------------------
    @property
    def speaker(self) -> Speaker:
        return Speaker.of(self.visitor, self.interpreter)

    @property
    def caption(self) -> str:
        """The translation being spoken, or the last one for ``caption_hold_s`` after it; the
        newest ``caption_chars`` characters, cut at a word."""
        if not self.cfg.captions:
            return ""
        p = self.passage
        if p is None or not p.said:
            held = self._last is not None and self._now - self._last_end_t < self.cfg.caption_hold_s
            p = self._last if held and p is None else None
        if p is None:
            return ""
        return _tail(p.text, self.cfg.caption_chars)


def _tail(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    cut = text[-n:]
    space = cut.find(" ")
    return "…" + (cut[space + 1 :] if 0 <= space < n // 2 else cut)


def _t(t: float | None) -> float | None:
    return None if t is None else round(t, 6)


def _ms(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)
