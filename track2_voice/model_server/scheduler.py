"""The batch clock: one engine step per 80 ms for every session that has started.

Sessions live on the server's event loop; the engine lives on this scheduler's thread, the
only thread that touches the model. They meet in two places, neither of which blocks:

- ``push(session, pcm)``: the session's next input frame goes into its bounded inbox (the
  oldest is dropped, and counted, when a client sends faster than the batch runs);
- ``deliver(output)``: the session's callback, called on this thread; the server's callback
  only hands the frame to the event loop (``call_soon_threadsafe``).

When does a step run? As soon as every started session has a frame waiting, or when one
is a frame behind (two waiting), or, for whoever has a frame, 80 ms after the previous
step. A session with nothing waiting sits that step out (``exec_mask``): its model does not
advance, exactly as ``moshi.server`` does nothing until audio arrives. So a slow or silent
client never stalls the others and never desynchronises its own conversation (its stream
depends on its own frames only, whatever the timing), and clients that send faster than
real time (a file) are served as fast as the model runs. A session starts with its first
frame; before that it costs nothing and is not waited for.

Joining takes a free slot at once (or raises ``NoFreeSlot``: the server refuses, and the
others never notice); the slot's reset runs on this thread before its first step. A session
whose slot reaches the rollover budget has only its own slot reset, at a quiet moment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from track2_voice.common.errors import CreatureError
from track2_voice.config import RolloverConfig
from track2_voice.model_server.engine import BatchEngine, SlotOutput
from track2_voice.model_server.options import SlotSampling
from track2_voice.model_server.slot_session import Session

log = logging.getLogger(__name__)

STEP_TIMES_KEPT = 4096
STALL_AFTER_S = 2.0  # the loop counts as stalled when frames waited this long for a step
JOIN_TIMEOUT_S = 5.0


class NoFreeSlot(CreatureError, RuntimeError):
    """Every slot holds a session. The message is what the refused client is told."""


class Scheduler:
    """Owns the engine's thread; sessions join, push frames and leave from any thread."""

    def __init__(
        self,
        engine: BatchEngine,
        frame_s: float = 0.08,
        inbox_frames: int = 8,
        rollover: RolloverConfig | None = None,
    ) -> None:
        self.engine = engine
        self.frame_s = frame_s
        self.inbox_frames = inbox_frames
        self.rollover_cfg = rollover or RolloverConfig()
        self._cond = threading.Condition()
        self._sessions: dict[int, Session] = {}  # slot -> session
        self._pending_reset: dict[int, Session] = {}
        self._free = list(range(engine.slots))
        self._stop = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.step_ms: deque[float] = deque(maxlen=STEP_TIMES_KEPT)
        self.batch_sizes: deque[int] = deque(maxlen=STEP_TIMES_KEPT)
        self.steps = 0
        self.late_steps = 0  # steps that began more than a frame after their deadline
        self.refused = 0
        self.served = 0
        self.last_step_at = time.monotonic()

    # -- any thread ------------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        return self.engine.slots

    def free_slots(self) -> int:
        with self._cond:
            return len(self._free)

    def join(self, sampling: SlotSampling, deliver: Callable[[SlotOutput], None]) -> Session:
        """A clean slot for a new session, or ``NoFreeSlot`` at once when all are taken."""
        with self._cond:
            if self.error is not None:
                raise NoFreeSlot(f"the model server's batch loop failed: {self.error}")
            if not self._free:
                self.refused += 1
                raise NoFreeSlot(
                    f"no free slot: all {self.slots} slots of this model server are in use; "
                    "try again later"
                )
            slot = self._free.pop(0)
            s = Session(slot, sampling, deliver, self.inbox_frames, self.rollover_cfg)
            self._sessions[slot] = s
            self._pending_reset[slot] = s
            self.served += 1
            self._cond.notify()
        return s

    def leave(self, s: Session) -> None:
        with self._cond:
            if s.closed:
                return
            s.closed = True
            if self._sessions.get(s.slot) is s:
                del self._sessions[s.slot]
                self._pending_reset.pop(s.slot, None)
                self._free.append(s.slot)
                self._free.sort()
            self._cond.notify()

    def push(self, s: Session, pcm: np.ndarray) -> None:
        """The session's next 1920-sample input frame."""
        with self._cond:
            if s.closed:
                return
            if len(s.inbox) >= s.inbox_frames:
                s.inbox.popleft()
                s.stats.dropped_in += 1
            s.inbox.append(pcm)
            s.stats.frames_in += 1
            if not s.started:
                s.started = True
                s.first_input_at = time.monotonic()
            self._cond.notify()

    def sessions(self) -> list[Session]:
        with self._cond:
            return list(self._sessions.values())

    def healthy(self) -> bool:
        """False when the loop died, or frames are waiting and no step ran for a while."""
        if self.error is not None or self._thread is None or not self._thread.is_alive():
            return False
        with self._cond:
            waiting = any(s.inbox for s in self._sessions.values())
        return not waiting or time.monotonic() - self.last_step_at < STALL_AFTER_S

    def stats(self) -> dict[str, Any]:
        ms = np.array(self.step_ms) if self.step_ms else np.zeros(1)
        with self._cond:
            active = len(self._sessions)
            free = len(self._free)
        return {
            "slots": self.slots,
            "active": active,
            "free": free,
            "served": self.served,
            "refused": self.refused,
            "steps": self.steps,
            "late_steps": self.late_steps,
            "step_ms_p50": round(float(np.percentile(ms, 50)), 2),
            "step_ms_p99": round(float(np.percentile(ms, 99)), 2),
            "healthy": self.healthy(),
        }

    def start(self) -> Scheduler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-batch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)

    # -- the engine's thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # reported through healthy() and to joining clients
            self.error = e
            log.exception("model server batch loop failed")
            for s in self.sessions():
                self.leave(s)

    def _due(self, deadline: float) -> bool | float:
        """Under the lock: True when a step should run now, else how long to wait (inf:
        until a frame arrives)."""
        started = [s for s in self._sessions.values() if s.started]
        ready = [s for s in started if s.inbox]
        if not ready:
            return float("inf")
        if len(ready) == len(started) or any(len(s.inbox) > 1 for s in ready):
            return True
        remaining = deadline - time.monotonic()
        return True if remaining <= 0 else remaining

    def _loop(self) -> None:
        deadline = time.monotonic() + self.frame_s
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    due = self._due(deadline)
                    if due is True:
                        break
                    self._cond.wait(None if due == float("inf") else due)
                resets = list(self._pending_reset.values())
                self._pending_reset.clear()
                batch: dict[int, np.ndarray] = {}
                stepping: list[Session] = []
                for s in self._sessions.values():
                    if not s.started:
                        continue
                    if s.inbox:
                        batch[s.slot] = s.inbox.popleft()
                        stepping.append(s)
                    else:
                        s.stats.waited += 1
            for s in resets:
                self.engine.reset_slot(s.slot, s.sampling)
            begun = time.monotonic()
            if begun > deadline + self.frame_s:
                self.late_steps += 1
            t0 = time.perf_counter()
            outputs = self.engine.step(batch)
            self.step_ms.append((time.perf_counter() - t0) * 1e3)
            self.batch_sizes.append(len(batch))
            self.steps += 1
            now = self.last_step_at = time.monotonic()
            deadline = begun + self.frame_s
            by_slot = {o.slot: o for o in outputs}
            for s in stepping:
                self._after_step(s, batch[s.slot], by_slot[s.slot], now)

    def _after_step(self, s: Session, user: np.ndarray, out: SlotOutput, now: float) -> None:
        if s.closed:
            return
        s.stats.steps += 1
        s.steps_since_reset += 1
        if out.pcm is not None:
            s.stats.frames_out += 1
            if s.stats.first_audio_s is None and s.first_input_at is not None:
                s.stats.first_audio_s = now - s.first_input_at
        try:
            s.deliver(out)
        except Exception:  # a broken callback ends that session, not the batch
            log.exception("model server: delivering to slot %d failed", s.slot)
            self.leave(s)
            return
        s.rollover.observe(user, out.pcm)
        reason = s.rollover.due(s.steps_since_reset)
        if reason is not None:
            self.engine.reset_slot(s.slot, s.sampling)
            s.steps_since_reset = 0
            s.rollover.quiet_frames = 0
            s.stats.rollovers += 1
            log.info("slot %d rolled over after its step budget (%s)", s.slot, reason)
