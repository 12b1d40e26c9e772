"""The face message for one frame: the face contract ``{emotion, mouth, speaking}`` plus the
extras the page uses (valence, arousal, listening, t, connected, state, mood, robot, with
``face.lipsync: visemes`` the frame's ``visemes`` weights and its ``index``, and as an
interpreter ``speaker`` and ``caption``).

The brain composes it with its look and state; a creature without a brain (``slow_loop.
enabled: false``) uses :class:`NeutralFace`, which shows the mouth and speaking on a neutral
look. Both answer ``speaking`` with the same :class:`SpeakingDetector`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from affect.blend import NEUTRAL, Affect
from orchestrator.brain.speaking import SpeakingDetector
from orchestrator.brain.viseme_track import VisemeTracker
from track2_voice.events import Connected, Disconnected, Event, FrameEvent

if TYPE_CHECKING:
    from orchestrator.brain.interpreter import Interpreter


def face_state(
    frame: FrameEvent,
    *,
    speaking: bool,
    connected: bool,
    look: Affect = NEUTRAL,
    state: str | None = None,
    robot: bool | None = None,
    visemes: dict[str, float] | None = None,
    visemes_index: int | None = None,
    interpreter: Interpreter | None = None,
) -> dict[str, Any]:
    mouth = min(1.0, max(0.0, float(frame.mouth)))
    out: dict[str, Any] = {
        "emotion": look.emotion,
        "mouth": round(mouth, 4),
        "speaking": speaking,
        "valence": round(look.valence, 4),
        "arousal": round(look.arousal, 4),
        "listening": bool(frame.user_speaking),
        "t": round(frame.t, 6),
        "connected": connected,
        "mood": look.mood,
    }
    if state is not None:
        out["state"] = state
    if robot is not None:
        out["robot"] = robot
    if visemes is not None:  # the index lets a page show them when the frame is heard
        out["visemes"] = {k: round(v, 3) for k, v in visemes.items()}
        out["index"] = frame.index if visemes_index is None else visemes_index
    if interpreter is not None:
        out["speaker"] = interpreter.speaker.value
        out["caption"] = interpreter.caption
    return out


def frame_visemes(tracker: VisemeTracker | None, frame: FrameEvent) -> dict[str, float] | None:
    """The tracker's weights once it has seen this frame (they are for the frame
    ``tracker.shown``: this one, or with look-ahead an earlier one)."""
    if tracker is None or tracker.index != frame.index or tracker.shown < 0:
        return None
    return tracker.weights


def visemes_index(tracker: VisemeTracker | None) -> int | None:
    """The frame the tracker's weights are for (sent as the face message's ``index``)."""
    return None if tracker is None else tracker.shown


class FaceSource(Protocol):
    """What the runtime asks for each frame: see every event, then compose the face."""

    async def handle(self, event: Event) -> None: ...

    def face_state(self, frame: FrameEvent) -> dict[str, Any]: ...


class NeutralFace:
    """The face of a creature with no brain: the mouth moves, the look stays neutral."""

    def __init__(self, visemes: VisemeTracker | None = None) -> None:
        self.speaking = SpeakingDetector()
        self.visemes = visemes
        self.connected = True

    async def handle(self, event: Event) -> None:
        if isinstance(event, FrameEvent):
            self.speaking.update(event)
            if self.visemes is not None:
                self.visemes.update(event)
        elif isinstance(event, Connected):
            self.connected = True
        elif isinstance(event, Disconnected):
            self.connected = False

    def face_state(self, frame: FrameEvent) -> dict[str, Any]:
        return face_state(
            frame,
            speaking=self.speaking.speaking,
            connected=self.connected,
            visemes=frame_visemes(self.visemes, frame),
            visemes_index=visemes_index(self.visemes),
        )
