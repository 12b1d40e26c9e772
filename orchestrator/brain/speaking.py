"""Is the creature speaking? One answer for the state machine and the face.

A frame counts as speech when the mouth is open past ``SPEAKING_MOUTH`` or the frame carries a
text piece (words lead the audio by the acoustic delay). The creature keeps counting as
speaking for ``HANGOVER_FRAMES`` quiet frames, so the gaps between words do not flip the
state machine or the face back and forth.
"""

from __future__ import annotations

from track2_voice.events import FrameEvent

SPEAKING_MOUTH = 0.05  # a mouth at or above this is speech
HANGOVER_FRAMES = 6  # quiet frames (480 ms) before the creature stops counting as speaking


class SpeakingDetector:
    def __init__(self, hangover_frames: int = HANGOVER_FRAMES) -> None:
        self.hangover_frames = hangover_frames
        self._quiet_frames = hangover_frames
        self.speaking = False

    def update(self, frame: FrameEvent) -> bool:
        """Take one frame; return whether the creature is speaking now."""
        voiced = frame.mouth >= SPEAKING_MOUTH or bool(frame.text)
        self._quiet_frames = 0 if voiced else self._quiet_frames + 1
        self.speaking = self._quiet_frames < self.hangover_frames
        return self.speaking
