"""The creature's look as the brain plays it: the affect mixer moved by what happens (a
call's outcome, a body coming or going, an intent) and by the state machine, each change
published as an ``AffectChanged`` stamped with the last frame."""

from __future__ import annotations

from collections.abc import Callable

from affect.blend import Affect
from affect.mixer import AffectMixer
from orchestrator.brain.events import AffectChanged
from track2_voice.events import Event

# a terminal status plays the matching look from the affect map
STATUS_LOOKS = {
    "succeeded": "tool_succeeded",
    "failed": "tool_failed",
    "cancelled": "tool_cancelled",
}


class Looks:
    def __init__(
        self,
        mixer: AffectMixer,
        publish: Callable[[Event], None],
        clock: Callable[[], float],
        frame_index: Callable[[], int],
    ) -> None:
        self.mixer = mixer
        self._publish = publish
        self._clock = clock
        self._frame_index = frame_index

    def event(self, name: str) -> None:
        """A passing look for ``name`` (an affect map event), when the map has one."""
        look = self.mixer.event(name, self._clock())
        if look is not None:
            self.show(name, look, True)

    def outcome(self, status: str) -> None:
        """The look of a call's terminal status (none for the others)."""
        look = STATUS_LOOKS.get(status)
        if look is not None:
            self.event(look)

    def show(self, cause: str, look: Affect, passing: bool) -> None:
        self._publish(
            AffectChanged(
                index=self._frame_index(),
                t=self._clock(),
                cause=cause,
                emotion=look.emotion,
                valence=round(look.valence, 3),
                arousal=round(look.arousal, 3),
                mood=look.mood,
                passing=passing,
            )
        )
