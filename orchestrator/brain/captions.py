"""What the face captions in a conversation (``face.captions``): the user's words (their
``UserWord`` events, partial words shown as they come and replaced as they settle), the
creature's words (its text pieces), both (the newest line) or none.

Why not the interpreter's caption: that one follows translated passages; here each side's
line is the words since it last paused, so the page shows who said what, as subtitles do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from track2_voice.events import Event, FrameEvent, UserWord

LINE_GAP_S = 1.2  # a side quiet this long starts a new line
MAX_CHARS = 160  # the newest characters a caption shows


@dataclass
class Line:
    """One side's current line; ``at``: when it last changed (the events' clock)."""

    finals: list[str] = field(default_factory=list)
    partials: list[UserWord] = field(default_factory=list)
    text: str = ""
    at: float | None = None

    def shown(self) -> str:
        words = self.finals + [w.text for w in self.partials]
        return (" ".join(words) if words else self.text).strip()


def _tail(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    return cut.split(" ", 1)[1] if " " in cut else cut


class Captions:
    def __init__(self, mode: str, hold_s: float = 3.0, chars: int = MAX_CHARS) -> None:
        self.mode = mode
        self.hold_s = hold_s
        self.chars = chars
        self.user = Line()
        self.creature = Line()
        self._user_end = -1e9  # mic-clock end of the user's last word

    def handle(self, ev: Event) -> None:
        if isinstance(ev, UserWord) and self.mode in ("user", "both"):
            self._word(ev)
        elif isinstance(ev, FrameEvent) and ev.text and self.mode in ("creature", "both"):
            line = self.creature
            if line.at is None or ev.t - line.at > LINE_GAP_S:
                line.text = ""
            line.text += ev.text
            line.at = ev.t

    def _word(self, w: UserWord) -> None:
        line = self.user
        if w.start - self._user_end > LINE_GAP_S:
            line.finals, line.partials = [], []  # a new utterance
        if w.final:
            line.finals.append(w.text)
            line.partials = [p for p in line.partials if p.start > w.start]
        else:  # a hypothesis replaces those from its start on
            line.partials = [p for p in line.partials if p.start < w.start] + [w]
        self._user_end = max(self._user_end, w.end)
        line.at = w.t

    def caption(self, now: float) -> tuple[str, str] | None:
        """(text, "user" | "creature") of the newest line still held, or None."""
        best: tuple[float, str, str] | None = None
        for who, line in (("user", self.user), ("creature", self.creature)):
            if line.at is None or now - line.at > self.hold_s + LINE_GAP_S:
                continue
            text = line.shown()
            if text and (best is None or line.at > best[0]):
                best = (line.at, text, who)
        return None if best is None else (_tail(best[1], self.chars), best[2])

    def add_to(self, state: dict) -> dict:
        """The face state with this caption (an interpreter's own caption wins)."""
        if state.get("caption"):
            return state
        t = state.get("t")
        got = self.caption(t) if isinstance(t, float) else None
        if got is None:
            return {**state, "caption": ""}
        return {**state, "caption": got[0], "caption_by": got[1]}
