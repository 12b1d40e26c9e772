"""What the services that run next to a session (the face, the telephone bridge) need of it: a
live session (``VoiceSession``) and a replayed one (``ReplaySession``) both provide it, so the
face serves either without knowing which."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from orchestrator.brain.viseme_track import VisemeTracker
    from orchestrator.bus import Bus
    from orchestrator.config import CreatureConfig
    from orchestrator.runtime.brain_host import BrainHost
    from orchestrator.runtime.io_loop import IoLoop
    from orchestrator.runtime.metrics import MetricsService


@runtime_checkable
class SessionHost(Protocol):
    """A started session: its config, its bus, the I/O loop that hosts its services, and the
    state directory (None: the one ``cfg.state_dir`` names)."""

    @property
    def cfg(self) -> CreatureConfig: ...

    @property
    def bus(self) -> Bus: ...

    @property
    def io(self) -> IoLoop: ...

    @property
    def state(self) -> Path | None: ...


@runtime_checkable
class FaceHost(SessionHost, Protocol):
    """A session the face can show: its brain (None: a neutral face follows the frames), its
    metrics (None: not served) and the visemes the face's mouth follows."""

    @property
    def slow(self) -> BrainHost | None: ...

    @property
    def metrics(self) -> MetricsService | None: ...

    @property
    def visemes(self) -> VisemeTracker | None: ...
