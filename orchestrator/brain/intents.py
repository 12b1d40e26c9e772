"""The intent watcher: a passive tap on the creature's text pieces.

Pieces accumulate in a rolling phrase buffer however the tokenizer split the words ("gra",
"bbing"): nothing is judged piece by piece. At an utterance boundary (sentence-end punctuation
inside a piece, ``pause_frames`` frames without text, or the mouth quiet for
``mouth_quiet_frames``) the buffered sentence is judged once by ``intent_rules``; Moshi's
lower-case, unpunctuated text thus ends at its pauses. A sentence end is seen in the very piece
that carries it, so a committed phrase fires with no waiting. The same action on the same
object is not fired twice within ``repeat_window_s``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.brain.intent_rules import IntentRules, Judgement, judge, load_rules
from orchestrator.slow_config import IntentConfig
from track2_voice.frames import FRAME_SECONDS

SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


@dataclass
class Intent:
    """A committed physical action heard in the creature's own speech."""

    action: str
    slots: dict[str, str | None]
    confidence: float
    phrase: str
    index: int
    t: float
    boundary: str
    id: str = field(default_factory=lambda: "int_" + uuid.uuid4().hex[:16])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            **self.slots,
            "confidence": self.confidence,
            "phrase": self.phrase,
            "index": self.index,
            "t": round(self.t, 6),
            "boundary": self.boundary,
        }


class IntentWatcher:
    """Feed it every frame's ``(index, t, text, mouth)``; it returns intents as they fire."""

    def __init__(
        self,
        cfg: IntentConfig | None = None,
        rules: IntentRules | None = None,
        on_judged: Callable[[Judgement, bool], None] | None = None,
    ) -> None:
        """``on_judged(judgement, repeated)`` sees every verdict (``creature intent
        --explain``); ``repeated`` is true when a match was dropped by ``repeat_window_s``."""
        self.cfg = cfg or IntentConfig()
        self.rules = rules or load_rules(self.cfg.rules_file)
        self.on_judged = on_judged
        self._buf = ""
        self._last_index = -1
        self._last_t = 0.0
        self._no_text = 0
        self._quiet = 0
        self._recent: deque[tuple[str, str | None, float]] = deque(maxlen=32)
        self.sentences = 0
        # where and why the last judged sentence ended (the dialogue places its calls there)
        self.last_boundary = ""

    @property
    def last_index(self) -> int:
        return self._last_index

    @property
    def last_t(self) -> float:
        return self._last_t

    @property
    def phrase(self) -> str:
        return self._buf.strip()

    def feed(self, index: int, t: float, text: str | None, mouth: float = 0.0) -> list[Intent]:
        out: list[Intent] = []
        if text:
            self._no_text = 0
            self._quiet = 0
            self._last_index, self._last_t = index, t
            rest = text
            while True:
                m = SENTENCE_END.search(rest)
                if m is None:
                    break
                self._buf += rest[: m.end()]
                rest = rest[m.end() :]
                out.extend(self._boundary("sentence_end", complete=True))
            self._buf += rest
            if len(self._buf) > self.cfg.max_phrase_chars:
                self._buf = self._buf[-self.cfg.max_phrase_chars :]
            return out
        self._no_text += 1
        self._quiet = self._quiet + 1 if mouth < self.cfg.mouth_quiet_level else 0
        if self._buf.strip():
            if self._no_text >= self.cfg.pause_frames:
                out.extend(self._boundary("pause", complete=False))
            elif self._quiet >= self.cfg.mouth_quiet_frames:
                out.extend(self._boundary("mouth_quiet", complete=False))
        return out

    def flush(self) -> list[Intent]:
        """End of stream: judge whatever is buffered."""
        return self._boundary("end", complete=False) if self._buf.strip() else []

    def _boundary(self, why: str, complete: bool) -> list[Intent]:
        sentence, self._buf = self._buf.strip(), ""
        if not sentence:
            return []
        self.sentences += 1
        self.last_boundary = why
        verdict = judge(sentence, self.rules, complete=complete)
        m = verdict.match
        if m is None:
            if self.on_judged is not None:
                self.on_judged(verdict, False)
            return []
        key = (m.action, m.slots.get("object"))
        now = self._last_t
        for action, obj, t in self._recent:
            if (action, obj) == key and now - t < self.cfg.repeat_window_s:
                if self.on_judged is not None:
                    self.on_judged(verdict, True)
                return []
        self._recent.append((*key, now))
        if self.on_judged is not None:
            self.on_judged(verdict, False)
        return [
            Intent(m.action, m.slots, m.confidence, m.phrase, self._last_index, self._last_t, why)
        ]


def intents_in_text(text: str, watcher: IntentWatcher | None = None) -> list[Intent]:
    """Feed a whole text word by word, one word a frame, as Moshi would; for the CLI and tests."""
    w = watcher or IntentWatcher()
    out: list[Intent] = []
    t0 = time.monotonic()
    words = text.split()
    for i, word in enumerate(words):
        out.extend(w.feed(i, t0 + i * FRAME_SECONDS, " " + word, mouth=0.5))
    out.extend(w.flush())
    return out
