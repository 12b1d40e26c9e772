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

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.analysis.record_file import Record
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
from orchestrator.runtime.brain_host import BrainHost
from orchestrator.runtime.io_loop import IoLoop
from orchestrator.runtime.metrics import served_metrics
from orchestrator.runtime.record import JsonlRecorder
from orchestrator.runtime.recorded_robot import RecordedCall, RecordedRobot, recorded_calls
from orchestrator.runtime.replay_time import ReplayClock, Slice, due
from orchestrator.runtime.visemes import build_viseme_tracker
from orchestrator.state_dir import state_dir
from track2_voice import events as voice
from track2_voice.events import Event, FrameEvent

log = logging.getLogger(__name__)

VOICE_TYPES: tuple[type[Event], ...] = (
    voice.FrameEvent,
    voice.LoopStarted,
    voice.LoopStopped,
    voice.VoiceError,
    voice.UserSpeechStarted,
    voice.UserSpeechEnded,
    voice.Connected,
    voice.Disconnected,
    voice.Rollover,
    voice.SceneLine,
    voice.SceneEnd,
    voice.PassageEnded,
    voice.UserWord,  # the user's side: the dialogue binds the creature's replies to it
)
DECISIONS: tuple[type[Event], ...] = (IntentDetected, ToolCallSent, ToolStatusChanged, StateChanged,
                                      AffectChanged)  # fmt: skip
SETTLE_POLL_S = 0.05


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
        self.cfg = self._replay_config(cfg)
        self.events = self._voice_events()
        self.clock = ReplayClock(rec.start_t + self.part.start_s, speed)
        self.bus = Bus()
        self.io = IoLoop()
        # the real state directory: the face's token and certificate (and, with --robot, the
        # robot token) are the ones phones and robots already have; the outbox is not in it
        self.state = state_dir(cfg.state_dir)
        self.visemes = build_viseme_tracker(self._as_recorded(self.cfg))
        self.slow = BrainHost(
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
        self.metrics = served_metrics(self.cfg, self.bus, self.io, self.clock)
        self.report = ReplayReport()
        self._stop = threading.Event()
        self._robots: dict[str, RecordedRobot] = {}
        self._decisions = self.bus.subscribe("replay-decisions", 65536, DECISIONS)

    def _replay_config(self, cfg: CreatureConfig) -> CreatureConfig:
        """``cfg`` with a throw-away outbox, so that a replay never leaves work for the next
        live run, and, unless ``--robot``, nothing that can move a robot: no channel, no
        webhook."""
        updates: dict[str, Any] = {"outbox": cfg.slow_loop.outbox.model_copy(
            update={"path": str(Path(self._tmp.name) / "replay-outbox.sqlite3")})}  # fmt: skip
        if not self.robot:
            updates["robot"] = cfg.slow_loop.robot.model_copy(update={"enabled": False})
            updates["webhook"] = cfg.slow_loop.webhook.model_copy(update={"url": None})
        slow_cfg = cfg.slow_loop.model_copy(update=updates)
        return cfg.model_copy(update={"slow_loop": slow_cfg})

    def _voice_events(self) -> list[Event]:
        """The record's voice events inside the slice; none is an error that says why."""
        events = [
            e
            for e in self.rec.events
            if isinstance(e, VOICE_TYPES) and self.part.holds(self.rec, e.t)
        ]
        if not events:
            raise ValueError(
                f"{self.rec.path}: no voice events between {self.part.start_s:g} s and "
                f"{self.part.end_s if self.part.end_s is not None else 'the end'} "
                "(--from/--to are seconds from the start of the record)"
            )
        return events

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
        backend = next(
            (e.backend for e in self.rec.events if isinstance(e, voice.LoopStarted)), None
        )
        if backend is None or backend not in cfg.face.visemes.text_lead_frames:
            return cfg
        voice_cfg = cfg.voice.model_copy(update={"backend": backend})
        return cfg.model_copy(update={"voice": voice_cfg})

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
            self.io.run_sync(lambda: [r.close() for r in self._robots.values()])
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
                    out.append((due(ev), ev))
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
            if not self.io.run_sync(lambda: sum(r.due for r in self._robots.values())):
                break
            time.sleep(SETTLE_POLL_S)
        self.io.run_sync(lambda: None)  # everything queued on the I/O loop before this has run
        self.report.decisions += self._decisions.drain()
