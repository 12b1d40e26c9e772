"""One interface for every voice backend: in-process models and remote servers alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from track2_voice.common.errors import UserError
from track2_voice.events import DiscreteEvent


class BackendError(UserError):
    """A user-facing problem with a backend: missing weights, bad repo, refused connection."""


@dataclass(slots=True)
class StepResult:
    """What a backend gives back for one user frame."""

    pcm: np.ndarray  # the creature's next 1920 samples (silence if it has none yet)
    text: str | None = None  # inner-monologue piece(s) produced at this step
    events: list[DiscreteEvent] = field(default_factory=list)  # rollover, connection, ...


class Backend(ABC):
    """Frames in, frames and text out. ``step`` must return within the frame budget or say why.

    Remote backends implement ``step`` without waiting on the network: they enqueue the user's
    frame and return whatever the server has delivered so far (silence otherwise).
    """

    name: str = "backend"

    def start(self) -> None:
        """Load weights / connect / warm up. Called once, before the first step."""

    @abstractmethod
    def step(self, pcm: np.ndarray) -> StepResult: ...

    def reset(self) -> None:
        """Forget the conversation; keep weights loaded."""

    def close(self) -> None:
        """Release everything. Safe to call twice."""

    @property
    def finished(self) -> bool:
        """True when a finite backend (a replay scene) has nothing more to say."""
        return False

    def set_user_speech(self, detector) -> None:  # noqa: B027 - optional hook
        """Give the backend read access to the user-speech detector (replay waits on it)."""
