"""A replay's time: the record's clock running ``speed`` times as fast as the wall clock,
when each recorded event is due on it, and the slice of the record (``--from``/``--to``)
that is replayed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from orchestrator.analysis.record_file import Record
from track2_voice.events import Event, FrameEvent


def due(ev: Event) -> float:
    """When the fast loop published it: a frame once finished, the rest at their stamp."""
    if isinstance(ev, FrameEvent):
        return ev.t + (ev.model_ms + ev.overhead_ms) / 1000.0
    return ev.t


class ReplayClock:
    """The record's time, running ``speed`` times as fast as the wall clock from ``start()``."""

    def __init__(self, rec_t0: float, speed: float) -> None:
        self.rec_t0 = rec_t0
        self.speed = speed
        self._wall0: float | None = None

    def start(self) -> None:
        self._wall0 = time.monotonic()

    def __call__(self) -> float:
        if self._wall0 is None:
            return self.rec_t0
        return self.rec_t0 + (time.monotonic() - self._wall0) * self.speed

    def wall_at(self, rec_t: float) -> float:
        assert self._wall0 is not None, "start() the clock first"
        return self._wall0 + (rec_t - self.rec_t0) / self.speed


@dataclass
class Slice:
    """``--from``/``--to``: seconds from the start of the record."""

    start_s: float = 0.0
    end_s: float | None = None

    def holds(self, rec: Record, t: float) -> bool:
        rel = t - rec.start_t
        return rel >= self.start_s and (self.end_s is None or rel <= self.end_s)
