"""One conversation in one slot of the batch: its bounded inbox, whether it has started, its
rollover policy and its counters. The scheduler owns the locking; a session is plain data
with a summary for ``/sessions`` and the logs."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from track2_voice.config import RolloverConfig
from track2_voice.model_server.engine import SlotOutput
from track2_voice.model_server.options import SlotSampling
from track2_voice.rollover import RolloverPolicy


@dataclass
class SessionStats:
    joined_at: float = field(default_factory=time.monotonic)
    frames_in: int = 0
    steps: int = 0
    frames_out: int = 0
    waited: int = 0  # steps this started session sat out: its next frame had not arrived
    dropped_in: int = 0  # input frames dropped: the client sent faster than the batch ran
    dropped_out: int = 0  # output frames dropped: the client did not read them in time
    rollovers: int = 0
    first_audio_s: float | None = None  # from the first input frame to the first output


class Session:
    """One conversation in one slot. Created by ``Scheduler.join``."""

    def __init__(
        self,
        slot: int,
        sampling: SlotSampling,
        deliver: Callable[[SlotOutput], None],
        inbox_frames: int,
        rollover: RolloverConfig,
    ) -> None:
        self.slot = slot
        self.sampling = sampling
        self.deliver = deliver
        self.inbox: deque[np.ndarray] = deque()
        self.inbox_frames = inbox_frames
        self.started = False
        self.closed = False
        self.first_input_at: float | None = None
        self.steps_since_reset = 0
        self.rollover = RolloverPolicy(rollover)
        self.stats = SessionStats()

    def summary(self) -> dict[str, Any]:
        s = self.stats
        return {
            "slot": self.slot,
            "frames_in": s.frames_in,
            "frames_out": s.frames_out,
            "steps": s.steps,
            "waited": s.waited,
            "dropped_in": s.dropped_in,
            "dropped_out": s.dropped_out,
            "rollovers": s.rollovers,
            "first_audio_ms": None if s.first_audio_s is None else round(s.first_audio_s * 1e3, 1),
            "seconds": round(time.monotonic() - s.joined_at, 1),
        }
