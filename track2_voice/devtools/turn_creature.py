"""The creature as a system under the shared harness (``track2_voice.devtools.turn_clock``).

The real fast loop runs on its own thread with the configured backend (replay, mlx, torch or
remote). The harness's 20 ms chunks go in through ``ClockSource.push`` (the seam browser
audio uses; it re-cuts them into 80 ms frames on its own clock, as a phone's audio would
arrive), and every output frame is reported to the harness the moment the loop hands it to
its sink, which is when a sound card would start playing it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import numpy as np

from track2_voice.audio.devices import AudioSink, ClockSource
from track2_voice.backends.base import Backend
from track2_voice.config import VoiceConfig
from track2_voice.devtools.turn_clock import (
    ClockSettings,
    TurnDetail,
    TurnTiming,
    Utterance,
    percentile,
    time_turns,
)
from track2_voice.frames import SAMPLE_RATE
from track2_voice.loop import FastLoop

MODEL_STEP = "model step (per 80 ms frame)"


class _HeardSink(AudioSink):
    def __init__(self) -> None:
        self.heard: Callable[[np.ndarray, int, float], None] | None = None

    def write(self, pcm: np.ndarray) -> None:
        if self.heard is not None:
            self.heard(pcm, SAMPLE_RATE, time.monotonic())


class CreatureSystem:
    name = "creature"
    rate = SAMPLE_RATE

    def __init__(self, backend: Backend, cfg: VoiceConfig) -> None:
        self.source = ClockSource()
        self.sink = _HeardSink()
        self.loop = FastLoop(backend, self.source, self.sink, cfg=cfg)
        self._seen_steps = 0
        self._thread = threading.Thread(target=self.loop.run, name="fast-loop", daemon=True)

    def start(self) -> None:
        self.loop.backend.start()
        self._thread.start()

    def close(self) -> None:
        self.loop.stop()
        self._thread.join(timeout=10)
        self.loop.close()

    def listen(self, heard) -> None:
        self.sink.heard = heard

    async def feed(self, chunk: np.ndarray) -> None:
        self.source.push(chunk)

    def begin_turn(self, utt: Utterance, t_end: float) -> None:
        pass

    async def hush(self) -> None:
        pass  # a full-duplex model listens while it speaks: nothing to stop

    def quiet(self) -> bool:
        return True

    def end_turn(self, first_audio_t: float | None) -> TurnDetail:
        timings = self.loop.stats.model_ms
        steps = timings.since(self._seen_steps)
        self._seen_steps = timings.total
        detail = TurnDetail()
        if steps.size:
            detail.metrics_ms[MODEL_STEP] = percentile(list(steps), 50) or 0.0
        return detail


async def time_creature(
    backend: Backend,
    cfg: VoiceConfig,
    utterances: list[Utterance],
    settings: ClockSettings,
    on_turn: Callable[[TurnTiming], None] | None = None,
) -> list[TurnTiming]:
    """Start the backend and the fast loop, play the utterances through the harness, stop."""
    system = CreatureSystem(backend, cfg)
    await asyncio.to_thread(system.start)
    try:
        return await time_turns(system, utterances, settings, on_turn)
    finally:
        await asyncio.to_thread(system.close)
