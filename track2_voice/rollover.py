"""Long sessions: a generator has a fixed step budget, so roll the model state over in silence.

Kyutai's apps stop when ``max_steps`` runs out (~5 minutes, moshi issue #51). The creature
instead resets the language model's state at the first quiet moment within the last
``margin_steps`` of the budget, or at the very end if nobody ever stops talking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from track2_voice.config import RolloverConfig
from track2_voice.events import Rollover
from track2_voice.lipsync import rms_dbfs

log = logging.getLogger(__name__)


class RolloverPolicy:
    def __init__(self, cfg: RolloverConfig | None = None) -> None:
        self.cfg = cfg or RolloverConfig()
        self.quiet_frames = 0
        self.sessions = 1
        self.total_steps = 0

    @property
    def max_steps(self) -> int:
        return self.cfg.max_steps

    def observe(self, user_pcm: np.ndarray, bot_pcm: np.ndarray | None) -> None:
        """Track how long both voices have been quiet."""
        quiet = rms_dbfs(user_pcm) < self.cfg.silence_db and (
            bot_pcm is None or rms_dbfs(bot_pcm) < self.cfg.silence_db
        )
        self.quiet_frames = self.quiet_frames + 1 if quiet else 0

    def due(self, step_idx: int) -> str | None:
        """'silence' when a quiet moment falls in the margin, 'budget' at the hard limit."""
        if step_idx >= self.cfg.max_steps - 1:
            return "budget"
        if step_idx >= self.cfg.max_steps - self.cfg.margin_steps and (
            self.quiet_frames >= self.cfg.silence_frames
        ):
            return "silence"
        return None

    def maybe_roll(self, step_idx: int, reset: Callable[[], None]) -> Rollover | None:
        """If a rollover is due, call ``reset`` (the backend's state reset) and return the event."""
        reason = self.due(step_idx)
        if reason is None:
            return None
        reset()
        log.info("rolled the model state over after %d steps (%s)", step_idx, reason)
        return self.rolled(step_idx, reason)

    def rolled(self, step_idx: int, reason: str) -> Rollover:
        """Book-keeping after the backend reset its state; returns the event to publish."""
        self.total_steps += step_idx
        self.sessions += 1
        self.quiet_frames = 0
        return Rollover(
            reason=reason, steps=step_idx, total_steps=self.total_steps, session=self.sessions
        )
