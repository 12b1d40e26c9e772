"""pocketsphinx: real words from real speech with no download (its wheel ships an US English
acoustic model, a language model and CMUdict).

Why its own endpointer: pocketsphinx decodes one utterance at a time and settles its words at
the utterance's end; ``pocketsphinx.Endpointer`` (its WebRTC-style VAD with a 0.3 s window)
cuts the stream into utterances as pocketsphinx's own live examples do. Between the cuts the
decoder's running hypothesis is reported as partial words.
"""

from __future__ import annotations

import numpy as np
import soxr

from track2_voice.config import PocketsphinxConfig
from track2_voice.frames import SAMPLE_RATE
from track2_voice.transcript.base import Heard, RecognizerError

PS_RATE = 16_000
FILLERS = {"<s>", "</s>", "<sil>", "<unk>"}


def _word(name: str) -> str | None:
    """A segment's word as text: fillers (``<sil>``, ``[NOISE]``) are none, and an alternative
    pronunciation's marker (``the(2)``) is dropped."""
    if name in FILLERS or name.startswith("[") or name.startswith("++"):
        return None
    return name.split("(", 1)[0]


class PocketsphinxRecognizer:
    name = "pocketsphinx"

    def __init__(self, cfg: PocketsphinxConfig | None = None) -> None:
        cfg = cfg or PocketsphinxConfig()
        try:
            from pocketsphinx import Decoder, Endpointer
        except ImportError as e:  # a dependency, so only a broken install gets here
            raise RecognizerError(f"voice.transcript.backend pocketsphinx: {e}") from None
        kw: dict = {"samprate": PS_RATE, "loglevel": "FATAL"}
        for key, value in (("hmm", cfg.hmm), ("lm", cfg.lm), ("dict", cfg.dictionary)):
            if value is not None:
                kw[key] = value
        try:
            self._ep = Endpointer(window=cfg.window_s, ratio=cfg.ratio, vad_mode=cfg.vad_mode)
            self._dec = Decoder(**kw)
        except (ValueError, RuntimeError) as e:
            raise RecognizerError(f"voice.transcript.pocketsphinx: {e}") from None
        self._frate = float(self._dec.config["frate"])
        self._rs = soxr.ResampleStream(SAMPLE_RATE, PS_RATE, 1, dtype="float32")
        self._pending = b""
        self._utt_start: float | None = None  # seconds of fed audio where the utterance began
        self._partial: list[Heard] = []

    def _segments(self, final: bool) -> list[Heard]:
        out = []
        base = self._utt_start or 0.0
        for seg in self._dec.seg() or ():
            text = _word(seg.word)
            if text is None:
                continue
            start = base + seg.start_frame / self._frate
            end = base + (seg.end_frame + 1) / self._frate
            out.append(Heard(text, round(start, 3), round(end, 3), final))
        return out

    def _revised(self) -> list[Heard]:
        """The partial words that differ from the last ones reported (from the first change on)."""
        now = self._segments(final=False)
        same = 0
        for a, b in zip(now, self._partial, strict=False):
            if a != b:
                break
            same += 1
        self._partial = now
        return now[same:]

    def accept(self, pcm: np.ndarray) -> list[Heard]:
        pcm16 = self._rs.resample_chunk(np.asarray(pcm, dtype=np.float32))
        data = self._pending + (np.clip(pcm16, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        size = self._ep.frame_bytes
        out: list[Heard] = []
        pos = 0
        while len(data) - pos >= size:
            out += self._frame(data[pos : pos + size])
            pos += size
        self._pending = data[pos:]
        if self._utt_start is not None:
            out += self._revised()
        return out

    def _frame(self, frame: bytes) -> list[Heard]:
        was_speech = self._ep.in_speech
        speech = self._ep.process(frame)
        if speech is None:
            return []
        if not was_speech:
            self._dec.start_utt()
            self._utt_start = float(self._ep.speech_start)
            self._partial = []
        self._dec.process_raw(speech, False, False)
        if not self._ep.in_speech:
            return self._end_utt()
        return []

    def _end_utt(self) -> list[Heard]:
        self._dec.end_utt()
        words = self._segments(final=True)
        self._utt_start = None
        self._partial = []
        return words

    def finish(self) -> list[Heard]:
        if self._utt_start is None:
            return []
        speech = self._ep.end_stream(self._pending) if self._pending else None
        self._pending = b""
        if speech is not None:
            self._dec.process_raw(speech, False, False)
        return self._end_utt()

    def close(self) -> None:
        pass
