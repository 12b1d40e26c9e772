"""A spoken sentence as the fast loop would give it: the audio in 80 ms frames, each with its
lip-sync mouth, and each word a text piece at the frame where it starts.

Shared by the viseme benchmark and the look-ahead test, which both score the mouth against
espeak-ng's true timings and must feed it the same frames.
"""

from __future__ import annotations

import numpy as np

from track2_voice.audio.devices import frames_of
from track2_voice.devtools.espeak_truth import Spoken
from track2_voice.events import FrameEvent
from track2_voice.frames import FRAME_SECONDS
from track2_voice.lipsync import LipSync


def word_pieces(spoken: Spoken) -> dict[int, str]:
    """Frame index -> the words that start in it, each after a space (as Moshi's pieces)."""
    pieces: dict[int, str] = {}
    for w in spoken.words:
        k = int(w.start / FRAME_SECONDS)
        pieces[k] = pieces.get(k, "") + " " + w.text
    return pieces


def spoken_frames(spoken: Spoken, tail: int, pcm: bool = True) -> list[FrameEvent]:
    """The frames of ``spoken`` then ``tail`` frames of silence; ``pcm=False`` leaves the audio
    out of the events (the mouth then has only the words to go by)."""
    lips = LipSync()
    pieces = word_pieces(spoken)
    frames = frames_of(spoken.pcm)
    frames += [np.zeros_like(frames[0])] * tail  # the silence after the sentence
    out = []
    for k, x in enumerate(frames):
        m = lips.update(x)
        out.append(
            FrameEvent(
                index=k,
                t=k * FRAME_SECONDS,
                mouth=m,
                rms_db=lips.last_db,
                text=pieces.get(k),
                pcm=x if pcm else None,
            )
        )
    return out
