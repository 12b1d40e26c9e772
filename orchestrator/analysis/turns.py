"""Turns and the latency a lab writes down: from the end of the user's speech to the
creature's first audio after it.

One definition serves the live metrics (``creature_response_latency_seconds``) and the
report, so the two always agree:

- the end of the user's speech: a ``user_speech_ended`` event's ``t`` less its
  ``silence_ms`` (the silence the detector waited for before deciding); in records made
  before ``silence_ms`` was recorded, the decision itself;
- the creature's first audio: the first later frame louder than ``VOICE_DB`` (the threshold
  of ``creature bench ttfat``), at the time the loop handed it to the speaker: the frame's
  ``t`` plus its ``model_ms`` and ``overhead_ms``;
- ``overlap``: the creature was already audible in the frame where the user's end was
  decided (full duplex: it may talk over the user); the latency is still to its next onset.

A turn whose user speaks again before the creature answers, or whose record ends first, has no
reply (``latency_ms`` None). A user still speaking when the record ends (a WAV with no
trailing silence) is a turn too, ``open``: it ends with the record and has no reply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from track2_voice.audible import VOICE_DB
from track2_voice.events import Event, FrameEvent, UserSpeechEnded, UserSpeechStarted


@dataclass
class Turn:
    number: int
    user_start_t: float | None
    vad_end_t: float  # when the detector decided the user had stopped
    speech_end_t: float  # when their voiced audio stopped
    end_index: int
    overlap: bool
    reply_t: float | None = None
    reply_index: int | None = None
    open: bool = False  # the record ended while the user was still speaking

    @property
    def latency_ms(self) -> float | None:
        if self.reply_t is None:
            return None
        return round((self.reply_t - self.speech_end_t) * 1000.0, 1)

    @property
    def latency_after_vad_ms(self) -> float | None:
        if self.reply_t is None:
            return None
        return round((self.reply_t - self.vad_end_t) * 1000.0, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "latency_ms": self.latency_ms,
            "latency_after_vad_ms": self.latency_after_vad_ms,
        }


def audio_out_t(frame: FrameEvent) -> float:
    """When the loop handed this frame's audio to the speaker."""
    return frame.t + (frame.model_ms + frame.overhead_ms) / 1000.0


class TurnTracker:
    """Feed it every event in order; ``feed`` returns a turn once it is complete (answered, or
    cut off by the user speaking again)."""

    def __init__(self, voice_db: float = VOICE_DB) -> None:
        self.voice_db = voice_db
        self.turns: list[Turn] = []
        self._user_start: float | None = None
        self._waiting: Turn | None = None
        self._audible = False  # the last frame's creature audio was louder than voice_db
        self._last_frame: FrameEvent | None = None

    def feed(self, ev: Event) -> Turn | None:
        if isinstance(ev, FrameEvent):
            self._audible = ev.rms_db > self.voice_db
            self._last_frame = ev
            turn = self._waiting
            if turn is not None and ev.index > turn.end_index and self._audible:
                turn.reply_t, turn.reply_index = audio_out_t(ev), ev.index
                self._waiting = None
                return turn
        elif isinstance(ev, UserSpeechStarted):
            self._user_start = ev.t
            cut = self._waiting
            self._waiting = None
            return cut
        elif isinstance(ev, UserSpeechEnded):
            cut = self._waiting
            silence_s = (ev.silence_ms or 0.0) / 1000.0
            turn = Turn(
                number=len(self.turns) + 1,
                user_start_t=self._user_start,
                vad_end_t=ev.t,
                speech_end_t=ev.t - silence_s,
                end_index=ev.index,
                overlap=self._audible,
            )
            self.turns.append(turn)
            self._waiting = turn
            self._user_start = None
            return cut
        return None

    def finish(self, end_t: float | None = None) -> Turn | None:
        """The record ended: a user still speaking makes an ``open`` turn, ending then."""
        if self._user_start is None:
            return None
        last = self._last_frame
        end = end_t if end_t is not None else (last.t if last is not None else self._user_start)
        turn = Turn(
            number=len(self.turns) + 1,
            user_start_t=self._user_start,
            vad_end_t=end,
            speech_end_t=end,
            end_index=last.index if last is not None else 0,
            overlap=self._audible,
            open=True,
        )
        self.turns.append(turn)
        self._user_start = None
        return turn


def turns_of(
    events: list[Event], voice_db: float = VOICE_DB, end_t: float | None = None
) -> list[Turn]:
    tracker = TurnTracker(voice_db)
    for ev in events:
        tracker.feed(ev)
    tracker.finish(end_t)
    return tracker.turns
