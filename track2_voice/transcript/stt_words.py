"""Kyutai STT text tokens -> words with times: one rule for the in-process recogniser and the
model server's ``/api/asr-streaming``.

The model writes a word ``delay_s`` after hearing it, one token per 80 ms step: a piece that
begins with SentencePiece's "▁" starts a word, the next such piece or a padding token (ids 0
and 3) ends it. So a word whose first piece comes at step ``n`` started at ``n * 0.08 -
delay_s`` seconds of the audio fed, and one closed at step ``m`` stopped at ``m * 0.08 -
delay_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from track2_voice.frames import FRAME_SECONDS

PAD_IDS = (0, 3)


@dataclass(frozen=True, slots=True)
class WordSoFar:
    """The open word grew (its text so far)."""

    text: str
    start: float


@dataclass(frozen=True, slots=True)
class WordDone:
    """A word ended: ``gap`` when a padding token ended it (silence), not the next word."""

    text: str
    start: float
    stop: float
    gap: bool


class SttWords:
    def __init__(self, tokenizer, delay_s: float, first_step: int = 0) -> None:
        self.tokenizer = tokenizer
        self.delay_s = delay_s
        self.first_step = first_step  # steps of silence prefix before the audio
        self._pieces: list[str] = []
        self._start = 0.0
        self._shown = ""

    def t(self, step: int) -> float:
        return round(max(0.0, (step - self.first_step) * FRAME_SECONDS - self.delay_s), 3)

    def token(self, step: int, token: int | None) -> list[WordSoFar | WordDone]:
        """The token the model wrote at ``step`` (None: nothing yet)."""
        if token is None or token in PAD_IDS:
            return self.close(step, gap=True)
        piece = self.tokenizer.id_to_piece(token)
        out: list[WordSoFar | WordDone] = []
        if piece.startswith("▁") or not self._pieces:
            out += self.close(step, gap=False)
            self._start = self.t(step)
        self._pieces.append(piece.replace("▁", ""))
        text = "".join(self._pieces).strip()
        if text and text != self._shown:
            self._shown = text
            out.append(WordSoFar(text, self._start))
        return out

    def close(self, step: int, gap: bool = True) -> list[WordSoFar | WordDone]:
        text = "".join(self._pieces).strip()
        self._pieces, self._shown = [], ""
        if not text:
            return []
        stop = max(self.t(step), round(self._start + FRAME_SECONDS, 3))
        return [WordDone(text, self._start, stop, gap)]
