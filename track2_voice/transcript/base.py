"""What a recogniser hands the transcript worker: words on the clock of the audio it was fed.

A recogniser knows nothing of frames, drops or the mic clock: it is fed 24 kHz audio and says
which words it heard, with start/end in seconds of the audio it was fed. The worker maps that
clock onto the mic clock (frames it never got leave gaps) and publishes ``UserWord`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from track2_voice.common.errors import CreatureError


@dataclass(frozen=True, slots=True)
class Heard:
    """One word. ``final`` False: the recogniser's current hypothesis for the word at
    ``start``, which a later Heard at the same or an earlier start may replace."""

    text: str
    start: float
    end: float
    final: bool


class Recognizer(Protocol):
    name: str

    def accept(self, pcm: np.ndarray) -> list[Heard]:
        """Feed one chunk of 24 kHz mono float32; return the words it settled or revised."""
        ...

    def finish(self) -> list[Heard]:
        """The input ended: settle what is still open."""
        ...

    def close(self) -> None: ...


class RecognizerError(CreatureError, RuntimeError):
    """The recogniser cannot start or went away (one line, for the log and the record)."""


class Transcriber(Protocol):
    """What the fast loop feeds: ``hear`` never waits; ``inline`` ones run on the loop's
    thread (offline runs), after the frame's deadline; ``flush`` waits for the last words."""

    inline: bool
    dropped: int
    words: int

    def hear(self, index: int, t: float, pcm: np.ndarray) -> None: ...

    def flush(self, timeout: float = 10.0) -> None: ...

    def close(self) -> None: ...
