"""The face message for one frame, typed (:class:`FaceState`; the face gets its ``to_dict()``):
the face contract ``{emotion, mouth, speaking}`` plus the extras the page uses (valence, arousal, listening, t, connected, state, mood, robot, with
``face.lipsync: visemes`` the frame's ``visemes`` weights and its ``index``, and as an
interpreter ``speaker`` and ``caption``).

The brain composes it with its look and state; a creature without a brain (``slow_loop.
enabled: false``) uses :class:`NeutralFace`, which shows the mouth and speaking on a neutral
look. Both answer ``speaking`` with the same :class:`SpeakingDetector`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from affect.blend import NEUTRAL, Affect
from orchestrator.brain.speaking import SpeakingDetector
from orchestrator.brain.viseme_track import VisemeTracker
from track2_voice.events import Connected, Disconnected, Event, FrameEvent

if TYPE_CHECKING:
    from orchestrator.brain.interpreter import Interpreter


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceState:
    """One frame's face message, typed; :meth:`to_dict` is its wire form (the JSON the face
    gets: the core keys first, an optional group only when it is there)."""

    emotion: str
    mouth: float
    speaking: bool
    valence: float
    arousal: float
    listening: bool
    t: float
    connected: bool
    mood: str | None
    state: str | None = None
    robot: bool | None = None
    visemes: dict[str, float] | None = None  # with ``index``: the frame they are for
    index: int | None = None
    speaker: str | None = None  # an interpreter's: who speaks, and the caption shown
    caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "emotion": self.emotion,
            "mouth": self.mouth,
            "speaking": self.speaking,
            "valence": self.valence,
            "arousal": self.arousal,
            "listening": self.listening,
            "t": self.t,
            "connected": self.connected,
            "mood": self.mood,
        }
        if self.state is not None:
            out["state"] = self.state
        if self.robot is not None:
            out["robot"] = self.robot
        if self.visemes is not None:
            out["visemes"] = self.visemes
            out["index"] = self.index
        if self.speaker is not None:
            out["speaker"] = self.speaker
            out["caption"] = self.caption
        return out


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
) -> FaceState:
    shapes = None if visemes is None else {k: round(v, 3) for k, v in visemes.items()}
    return FaceState(
        emotion=look.emotion,
        mouth=round(min(1.0, max(0.0, float(frame.mouth))), 4),
        speaking=speaking,
        valence=round(look.valence, 4),
        arousal=round(look.arousal, 4),
        listening=bool(frame.user_speaking),
        t=round(frame.t, 6),
        connected=connected,
        mood=look.mood,
        state=state,
        robot=robot,
        visemes=shapes,
        # the index lets a page show the shapes when the frame is heard
        index=None if shapes is None else frame.index if visemes_index is None else visemes_index,
        speaker=None if interpreter is None else interpreter.speaker.value,
        caption=None if interpreter is None else interpreter.caption,
    )


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

    def face_state(self, frame: FrameEvent) -> FaceState: ...


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

    def face_state(self, frame: FrameEvent) -> FaceState:
        return face_state(
            frame,
            speaking=self.speaking.speaking,
            connected=self.connected,
            visemes=frame_visemes(self.visemes, frame),
            visemes_index=visemes_index(self.visemes),
        )
