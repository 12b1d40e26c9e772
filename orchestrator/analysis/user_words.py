"""The user's words (``UserWord`` events) placed on the record's clock, and grouped into what
the user said.

A word's ``start``/``end`` are on the mic clock (seconds of user audio, frame ``i`` covering
``[i * 0.08, (i + 1) * 0.08)``); a frame's ``t`` is when its audio was complete. So a mic time
``s`` in frame ``k`` happened at ``t_k - ((k + 1) * 0.08 - s)``. One definition serves the live
metric (``creature_user_word_latency_seconds``) and the report.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from track2_voice.events import Event, FrameEvent, UserWord
from track2_voice.frames import FRAME_SECONDS

UTTERANCE_GAP_S = 0.8  # final words further apart than this start a new line of the transcript


class MicClockMap:
    """Frame index -> frame time for the newest ``keep`` frames; ``t_of`` a mic time."""

    def __init__(self, keep: int = 1024) -> None:
        self.keep = keep
        self._t: OrderedDict[int, float] = OrderedDict()

    def frame(self, ev: FrameEvent) -> None:
        self._t[ev.index] = ev.t
        while len(self._t) > self.keep:
            self._t.popitem(last=False)

    def t_of(self, mic_s: float) -> float | None:
        k = int(mic_s / FRAME_SECONDS)
        t = self._t.get(k)
        return None if t is None else t - ((k + 1) * FRAME_SECONDS - mic_s)


def word_latency_s(word: UserWord, clock: MicClockMap) -> float | None:
    """From the end of the word in the user's audio to its event (None: frame not seen)."""
    end_t = clock.t_of(word.end)
    return None if end_t is None else max(0.0, word.t - end_t)


@dataclass
class Said:
    """One line of the user's side: final words close together, on the record's clock."""

    start: float
    end: float
    text: str


def user_lines(events: list[Event]) -> list[Said]:
    """The user's final words as lines, in the order they were said."""
    clock = MicClockMap(keep=1 << 30)
    words: list[tuple[float, float, str]] = []
    for ev in events:
        if isinstance(ev, FrameEvent):
            clock.frame(ev)
        elif isinstance(ev, UserWord) and ev.final:
            a, b = clock.t_of(ev.start), clock.t_of(ev.end)
            if a is None or b is None:  # a word from before the first frame: at its event
                a = b = ev.t
            words.append((a, b, ev.text))
    lines: list[Said] = []
    for a, b, text in sorted(words):
        if lines and a - lines[-1].end <= UTTERANCE_GAP_S:
            lines[-1].end = max(lines[-1].end, b)
            lines[-1].text += " " + text
        else:
            lines.append(Said(a, b, text))
    return lines
