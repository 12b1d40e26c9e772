"""A session again from its record, with no model: the recorded voice events are published on
a bus at their recorded pace, and a fresh brain (today's intent rules, affect map and face)
reacts to them as it would live.

What is replayed and what is decided again:

- replayed: everything the voice side said (frames with their mouth, loudness and text, user
  speech, connection, rollovers, scene lines), at ``speed`` times real time;
- decided again, by the brain of this checkout: intents, tool calls, the state machine, the
  affect and every face state. That is the point: a changed ``configs/intents.yaml`` or
  ``configs/affect.yaml`` shows its effect on a real session;
- the robot: off by default, so nothing moves twice. A :class:`RecordedRobot` stands in and
  answers each call with the statuses the real robot sent for the matching recorded call, at
  the recorded delays. ``--robot`` opens the real robot channel instead (and the webhook).

Time: the brain runs on the record's clock (:class:`ReplayClock`), scaled by ``speed``, so
its easing and its lags are those of the original run at any speed. Calls go to a throw-away
outbox, so a replay never leaves work for the next live run.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.analysis.record_file import Record
from orchestrator.brain.calls import StatusError
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.events import (
    AffectChanged,
    IntentDetected,
    PassageTranslated,
    RobotConnected,
    RobotDisconnected,
    StateChanged,
    ToolCallSent,
    ToolStatusChanged,
    TranslationStarted,
)
from orchestrator.bus import Bus
from orchestrator.config import CreatureConfig
from orchestrator.runtime.io_loop import IoLoop
from orchestrator.runtime.metrics import MetricsService
from orchestrator.runtime.record import JsonlRecorder
from orchestrator.runtime.slow_loop import SlowLoop
from orchestrator.runtime.visemes import build_viseme_tracker
from orchestrator.state_dir import state_dir
from track2_voice.events import (
    Connected,
    Disconnected,
    Event,
    FrameEvent,
    LoopStarted,
    LoopStopped,
    PassageEnded,
    Rollover,
    SceneEnd,
    SceneLine,
    UserSpeechEnded,
    UserSpeechStarted,
    UserWord,
    VoiceError,
)

log = logging.getLogger(__name__)

VOICE_TYPES: tuple[type[Event], ...] = (
    FrameEvent,
    LoopStarted,
    LoopStopped,
    VoiceError,
    UserSpeechStarted,
    UserSpeechEnded,
    Connected,
    Disconnected,
    Rollover,
    SceneLine,
    SceneEnd,
    PassageEnded,
    UserWord,
)
DECISIONS: tuple[type[Event], ...] = (IntentDetected, ToolCallSent, ToolStatusChanged, StateChanged,
                                      AffectChanged)  # fmt: skip
SETTLE_POLL_S = 0.05
NOT_A_ROBOT = ("creature", "http")  # status sources that are not the robot's own answers


def _due(ev: Event) -> float:
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
class RecordedCall:
    action: str
    sent_t: float
    answers: list[tuple[float, str, str | None]] = field(default_factory=list)  # (delay, st, why)


class RecordedRobot:
    """A robot link that answers as the recorded robot did (a stand-in from the record, not a
    robot): the n-th call of an action gets the statuses of the n-th recorded call of that
    action, at the recorded delays (scaled by ``speed``). A repeated id is answered with the
    status already reported, as a real robot must; a cancel is honoured at once."""

    def __init__(
        self, name: str, calls: list[RecordedCall], dispatcher: ToolDispatcher, speed: float
    ) -> None:
        self.name = name
        self.dispatcher = dispatcher
        self.speed = speed
        self._unused = list(calls)
        self._last: dict[str, str] = {}
        self._silent: set[str] = set()  # calls the record has no answer for
        self._pending: dict[str, list[asyncio.TimerHandle]] = {}  # answers not given yet
        self.received = 0

    @property
    def due(self) -> int:
        """Answers scheduled and not given yet."""
        return sum(len(h) for h in self._pending.values())

    def send(self, message: dict[str, Any]) -> bool:
        loop = asyncio.get_running_loop()
        call_id = str(message.get("id"))
        if message.get("type") == "cancel":
            for h in self._pending.pop(call_id, []):
                h.cancel()
            if call_id in self._last:
                loop.call_soon(self._report, call_id, "cancelled", "cancelled by the creature")
            return True
        if message.get("type") != "tool_call":
            return True
        self.received += 1
        if call_id in self._pending or call_id in self._silent:  # delivered again: in hand
            return True
        if call_id in self._last:  # delivered again: re-report what we know
            loop.call_soon(self._report, call_id, self._last[call_id], None, False)
            return True
        action = message.get("arguments", {}).get("action")
        match = next((c for c in self._unused if c.action == action), None)
        if match is None:
            log.info("replay: the record has no answer to a %s call; it stays open", action)
            self._silent.add(call_id)
            return True
        self._unused.remove(match)
        self._pending[call_id] = [
            loop.call_later(delay / self.speed, self._report, call_id, status, why)
            for delay, status, why in match.answers
        ]
        return True

    def _report(self, call_id: str, status: str, why: str | None, remember: bool = True) -> None:
        if remember:
            self._last[call_id] = status
            handles = self._pending.get(call_id)
            if handles:
                handles.pop(0)  # answers fire in the order they were scheduled
        try:
            self.dispatcher.on_status(call_id, status, why, self.name, link=self)
        except StatusError as e:
            log.info("replay: status %s for %s not taken: %s", status, call_id, e)

    def close(self) -> None:
        for handles in self._pending.values():
            for h in handles:
                h.cancel()
        self._pending.clear()


def recorded_calls(rec: Record) -> dict[str, list[RecordedCall]]:
    """Per robot name, the calls it answered in the record, in the order they were sent."""
    sent: dict[str, RecordedCall] = {}
    robot_of: dict[str, str] = {}
    for ev in rec.events:
        if isinstance(ev, ToolCallSent):
            sent[ev.id] = RecordedCall(str(ev.arguments.get("action")), ev.t)
        elif isinstance(ev, ToolStatusChanged) and ev.source not in NOT_A_ROBOT:
            call = sent.get(ev.id)
            if call is not None:
                call.answers.append((max(0.0, ev.t - call.sent_t), ev.status.value, ev.reason))
                robot_of.setdefault(ev.id, ev.source)
    out: dict[str, list[RecordedCall]] = {}
    for call_id, call in sent.items():
        if call_id in robot_of:
            out.setdefault(robot_of[call_id], []).append(call)
    return out


@dataclass
class Slice:
    """``--from``/``--to``: seconds from the start of the record."""

    start_s: float = 0.0
    end_s: float | None = None

    def holds(self, rec: Record, t: float) -> bool:
        rel = t - rec.start_t
        return rel >= self.start_s and (self.end_s is None or rel <= self.end_s)


@dataclass
class ReplayReport:
    frames: int = 0
    events: int = 0
    decisions: list[Event] = field(default_factory=list)
    stopped_early: bool = False

    def summary(self, rec: Record, part: Slice) -> dict[str, Any]:
        def kinds(events: list[Event]) -> dict[str, Any]:
            intents = [e.intent.action for e in events if isinstance(e, IntentDetected)]
            return {
                "intents": intents,
                "tool_calls": sum(isinstance(e, ToolCallSent) for e in events),
                "statuses": [e.status.value for e in events if isinstance(e, ToolStatusChanged)],
                "states": [e.dst for e in events if isinstance(e, StateChanged)],
                "emotions": [e.emotion for e in events if isinstance(e, AffectChanged)],
            }

        original = [e for e in rec.events if isinstance(e, DECISIONS) and part.holds(rec, e.t)]
        now, then = kinds(self.decisions), kinds(original)
        return {
            "frames": self.frames,
            "events": self.events,
            "stopped_early": self.stopped_early,
            "replay": now,
            "record": then,
            "same": {k: now[k] == then[k] for k in now},
        }


class ReplaySession:
    """What ``face_running`` needs (cfg, bus, io, slow, metrics, clock) around a record."""

    def __init__(
        self,
        cfg: CreatureConfig,
        rec: Record,
        speed: float = 1.0,
        part: Slice | None = None,
        robot: bool = False,
        record_to: Path | None = None,
    ) -> None:
        self.rec = rec
        self.part = part or Slice()
        self.speed = speed
        self.robot = robot
        self._tmp = tempfile.TemporaryDirectory(prefix="creature-replay-")
        updates: dict[str, Any] = {"outbox": cfg.slow_loop.outbox.model_copy(
            update={"path": str(Path(self._tmp.name) / "replay-outbox.sqlite3")})}  # fmt: skip
        if not robot:  # nothing that can move a robot: no channel, no webhook
            updates["robot"] = cfg.slow_loop.robot.model_copy(update={"enabled": False})
            updates["webhook"] = cfg.slow_loop.webhook.model_copy(update={"url": None})
        slow_cfg = cfg.slow_loop.model_copy(update=updates)
        self.cfg = cfg.model_copy(update={"slow_loop": slow_cfg})
        self.events = [
            e for e in rec.events if isinstance(e, VOICE_TYPES) and self.part.holds(rec, e.t)
        ]
        if not self.events:
            raise ValueError(
                f"{rec.path}: no voice events between {self.part.start_s:g} s and "
                f"{self.part.end_s if self.part.end_s is not None else 'the end'} "
                "(--from/--to are seconds from the start of the record)"
            )
        self.clock = ReplayClock(rec.start_t + self.part.start_s, speed)
        self.bus = Bus()
        self.io = IoLoop()
        # the real state directory: the face's token and certificate (and, with --robot, the
        # robot token) are the ones phones and robots already have; the outbox is not in it
        self.state = state_dir(cfg.state_dir)
        self.visemes = build_viseme_tracker(self._as_recorded(self.cfg))
        self.slow = SlowLoop(
            self.cfg.slow_loop,
            self.bus,
            self.io,
            self.state,
            self.visemes,
            clock=self.clock,
            interpret=self._interpreting(),
        )
        self.recorder = (
            JsonlRecorder(record_to, self.bus, self.cfg.voice.loop.record_queue_size)
            if record_to
            else None
        )
        self.io.start()
        m = self.cfg.metrics
        self.metrics = (
            MetricsService(self.bus, m.queue_size, self.clock).start(self.io)
            if m.enabled and self.cfg.face.enabled
            else None
        )
        self.report = ReplayReport()
        self._stop = threading.Event()
        self._robots: dict[str, RecordedRobot] = {}
        self._decisions = self.bus.subscribe("replay-decisions", 65536, DECISIONS)

    def _interpreting(self):
        """Interpreter mode if the config asks for it or the record is an interpreter's (it
        holds translation lines): its words are then a visitor's, and fire no intents."""
        if self.cfg.interpreting is not None:
            return self.cfg.interpreting
        if any(isinstance(e, (TranslationStarted, PassageTranslated)) for e in self.rec.events):
            log.info("the record is an interpreter's: replaying in interpret mode")
            return self.cfg.interpret
        return None

    def _as_recorded(self, cfg: CreatureConfig) -> CreatureConfig:
        """The config with the record's backend, whose text lead the visemes need."""
        backend = next((e.backend for e in self.rec.events if isinstance(e, LoopStarted)), None)
        if backend is None or backend not in cfg.face.visemes.text_lead_frames:
            return cfg
        voice = cfg.voice.model_copy(update={"backend": backend})
        return cfg.model_copy(update={"voice": voice})

    # -- lifecycle ------------------------------------------------------------------------------
    def start_slow(self) -> None:
        self.slow.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        if self._robots:
            self.io.call(lambda: [r.close() for r in self._robots.values()])
        self.slow.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.io.stop()
        self.report.decisions += self._decisions.drain()
        if self.recorder is not None:
            self.recorder.close()
        self._tmp.cleanup()

    # -- the recorded robot ------------------------------------------------------------------------
    def _timeline(self) -> list[tuple[float, Event | Callable[[], None]]]:
        """What to do, in the record's order (the bus's publish order, which is what every
        consumer saw), each with the record time it is due: voice events to publish, and the
        recorded robots coming and going (unless the real channel is open)."""
        calls = recorded_calls(self.rec)
        start = self.rec.start_t + self.part.start_s
        out: list[tuple[float, Event | Callable[[], None]]] = []
        present: set[str] = set()
        for ev in self.rec.events:
            inside = self.part.holds(self.rec, ev.t)
            if isinstance(ev, VOICE_TYPES):
                if inside:
                    out.append((_due(ev), ev))
            elif isinstance(ev, (RobotConnected, RobotDisconnected)) and not self.robot:
                if ev.t < start:  # who was there when the slice starts
                    (present.add if isinstance(ev, RobotConnected) else present.discard)(ev.robot)
                elif inside and isinstance(ev, RobotConnected):
                    out.append((ev.t, self._connect_fn(ev.robot, calls.get(ev.robot, []))))
                elif inside:
                    out.append((ev.t, self._disconnect_fn(ev.robot)))
        early = [(start, self._connect_fn(n, calls.get(n, []))) for n in sorted(present)]
        return early + out

    def _connect_fn(self, name: str, calls: list[RecordedCall]) -> Callable[[], None]:
        def connect() -> None:
            dispatcher = self.slow.dispatcher
            robot = self._robots.get(name)
            if robot is None:
                robot = self._robots[name] = RecordedRobot(name, calls, dispatcher, self.speed)
            if robot not in dispatcher.robots:
                dispatcher.robot_connected(robot)

        return connect

    def _disconnect_fn(self, name: str) -> Callable[[], None]:
        def disconnect() -> None:
            robot = self._robots.get(name)
            if robot is not None:
                self.slow.dispatcher.robot_disconnected(robot, "disconnected (recorded)")

        return disconnect

    # -- playing ------------------------------------------------------------------------------------
    def play(self) -> ReplayReport:
        """Publish the record's voice events at their pace on this thread (as the fast loop
        would); the recorded robots connect and answer on the I/O loop. Returns when done."""
        loop = self.io.loop
        assert loop is not None
        self.clock.start()
        for at, item in self._timeline():
            wait = self.clock.wall_at(at) - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                self.report.stopped_early = True
                break
            if isinstance(item, Event):
                self.bus.publish(item)
                self.report.events += 1
                self.report.frames += isinstance(item, FrameEvent)
            else:
                loop.call_soon_threadsafe(item)
        return self.report

    def settle(self, timeout_s: float) -> None:
        """Give the recorded robots the time to give their last answers, then collect what
        the brain decided."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if not self.io.call(lambda: sum(r.due for r in self._robots.values())):
                break
            time.sleep(SETTLE_POLL_S)
        self.io.call(lambda: None)  # everything queued on the I/O loop before this has run
        self.report.decisions += self._decisions.drain()
