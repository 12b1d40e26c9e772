"""How each event moves the metric families (``metric_families.FAMILIES``): a figure is
derived from the typed events the fast loop and the brain already publish, so neither does
any bookkeeping for an observer. ``CreatureMetrics.observe`` runs on the I/O loop, fed by
``metrics.metrics_feed``; what is not an event (connections, drops) is read at scrape time.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from orchestrator.analysis.turns import TurnTracker
from orchestrator.analysis.user_words import MicClockMap, word_latency_s
from orchestrator.brain.events import (
    IntentDetected,
    PassageTranslated,
    PlannerConsulted,
    PlannerDecision,
    RobotConnected,
    RobotDisconnected,
    RobotRefused,
    StateChanged,
    StatusRefused,
    ToolCallSent,
    ToolProgress,
    ToolRejected,
    ToolStatusChanged,
    TranslationStarted,
)
from orchestrator.bus import Bus
from orchestrator.runtime.metric_families import FAMILIES, BusDrops
from orchestrator.runtime.phone_call_events import PhoneCallEnded, PhoneCallStarted
from track2_voice import events as voice
from track2_voice.events import Event

OPEN_CALLS_KEPT = 1024  # calls whose status times are still being measured (oldest forgotten)
PLANNER_ANSWERED = ("calls", "none", "malformed")  # verdicts that came with an answer


def _moves_nothing(metrics: CreatureMetrics, ev: Event) -> None:
    """What an event no figure depends on does."""


# event type -> the ``CreatureMetrics`` method that moves its figures (registered below, next
# to each method); ``dispatch`` finds a subclass's handler too, and caches it per type
_HANDLERS = functools.singledispatch(_moves_nothing)


class CreatureMetrics:
    """The metric families (``FAMILIES``, each kept in its ``attr``) and how each event moves
    them. ``observe`` runs on the I/O loop."""

    def __init__(self, bus: Bus | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        disable_created_metrics()  # no ``*_created`` series: Prometheus has no use for them
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        if bus is not None:
            r.register(BusDrops(bus))
        for f in FAMILIES:
            setattr(self, f.attr, f.declare(r))
        self._tracker = TurnTracker()
        self._mic = MicClockMap()
        self._intent_t: OrderedDict[str, float] = OrderedDict()
        self._sent_t: OrderedDict[str, float] = OrderedDict()
        self._remote = False

    # -- what is read at scrape time -----------------------------------------------------
    def watch_faces(self, count: Callable[[], float]) -> None:
        self.faces.set_function(count)

    def watch_phones(self, connected: Callable[[], bool]) -> None:
        self.phones.set_function(lambda: float(connected()))

    def watch_robots(self, count: Callable[[], int]) -> None:
        """Read the brain's robot links at scrape time (on the I/O loop, where they live)."""
        self.robots.set_function(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- the face ----------------------------------------------------------------------------
    def timed(self, publish: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """``publish`` (the face server's) that also observes the frame -> face time."""

        def publish_timed(state: dict[str, Any]) -> None:
            publish(state)
            t = state.get("t")
            if isinstance(t, float):
                self.face_send.observe(max(0.0, self.clock() - t))

        return publish_timed

    # -- events: each type moves its own figures ----------------------------------------------
    def observe(self, ev: Event) -> None:
        """Move the figures ``ev`` bears on (an event no figure depends on moves none): the
        method registered for its type in ``_HANDLERS`` does."""
        _HANDLERS.dispatch(type(ev))(self, ev)

    @_HANDLERS.register(voice.FrameEvent)
    def _frame(self, ev: voice.FrameEvent) -> None:
        self.frames.inc()
        if ev.missed:
            self.misses.inc()
        self.model_step.observe(ev.model_ms / 1000.0)
        self.overhead.observe(ev.overhead_ms / 1000.0)
        self._mic.frame(ev)
        self._turn(ev)

    @_HANDLERS.register(voice.UserWord)
    def _user_word(self, ev: voice.UserWord) -> None:
        lag = word_latency_s(ev, self._mic)
        if lag is not None:
            self.word_latency.labels("true" if ev.final else "false").observe(lag)

    @_HANDLERS.register(voice.UserSpeechStarted)
    @_HANDLERS.register(voice.UserSpeechEnded)
    def _user_speech(self, ev: voice.UserSpeechStarted | voice.UserSpeechEnded) -> None:
        if isinstance(ev, voice.UserSpeechEnded):
            self.turns.inc()
        self._turn(ev)

    @_HANDLERS.register(IntentDetected)
    def _intent(self, ev: IntentDetected) -> None:
        self.intents.labels(ev.intent.action).inc()
        _remember(self._intent_t, ev.intent.id, ev.intent.t)

    @_HANDLERS.register(ToolCallSent)
    def _call_sent(self, ev: ToolCallSent) -> None:
        self.calls.labels(str(ev.arguments.get("action"))).inc()
        _remember(self._sent_t, ev.id, ev.t)
        t_intent = self._intent_t.pop(ev.intent, None)
        if t_intent is not None:
            self.decision.observe(max(0.0, ev.t - t_intent))

    @_HANDLERS.register(ToolStatusChanged)
    def _call_status(self, ev: ToolStatusChanged) -> None:
        sent = self._sent_t.get(ev.id)
        if sent is not None:
            self.status_after.labels(ev.status.value).observe(max(0.0, ev.t - sent))
        if ev.status.terminal:
            self.finished.labels(str(ev.action), ev.status.value).inc()
            self._sent_t.pop(ev.id, None)

    @_HANDLERS.register(ToolRejected)
    def _call_rejected(self, ev: ToolRejected) -> None:
        self.rejected.labels(ev.action).inc()

    @_HANDLERS.register(ToolProgress)
    def _call_progress(self, ev: ToolProgress) -> None:
        self.progress_reports.labels(str(ev.action)).inc()
        if ev.progress is not None:
            self.progress.labels(str(ev.action)).set(ev.progress)

    @_HANDLERS.register(StateChanged)
    def _state(self, ev: StateChanged) -> None:
        self.state.state(ev.dst)

    @_HANDLERS.register(RobotConnected)
    def _robot_connected(self, ev: RobotConnected) -> None:
        self.robot_connects.inc()
        self.robots.set(ev.robots)  # until watch_robots reads the brain itself

    @_HANDLERS.register(RobotDisconnected)
    def _robot_disconnected(self, ev: RobotDisconnected) -> None:
        self.robot_disconnects.inc()
        self.robots.set(ev.robots)

    @_HANDLERS.register(RobotRefused)
    def _robot_refused(self, ev: RobotRefused) -> None:
        self.robot_refused.inc()

    @_HANDLERS.register(StatusRefused)
    def _status_refused(self, ev: StatusRefused) -> None:
        self.status_refused.labels(ev.code).inc()

    @_HANDLERS.register(voice.Connected)
    def _backend_connected(self, ev: voice.Connected) -> None:
        self.connects.inc()
        self.sessions.set(1)

    @_HANDLERS.register(voice.Disconnected)
    def _backend_disconnected(self, ev: voice.Disconnected) -> None:
        self.disconnects.inc()
        self.sessions.set(0)

    @_HANDLERS.register(voice.LoopStarted)
    def _loop_started(self, ev: voice.LoopStarted) -> None:
        # a remote backend counts once its server holds the session (``connected``)
        self._remote = ev.backend == "remote"
        self.sessions.set(0 if self._remote else 1)

    @_HANDLERS.register(voice.LoopStopped)
    def _loop_stopped(self, ev: voice.LoopStopped) -> None:
        self.sessions.set(0)

    @_HANDLERS.register(voice.Rollover)
    def _rollover(self, ev: voice.Rollover) -> None:
        self.rollovers.labels(ev.reason).inc()

    @_HANDLERS.register(voice.VoiceError)
    def _voice_error(self, ev: voice.VoiceError) -> None:
        self.errors.labels(ev.where).inc()

    @_HANDLERS.register(PhoneCallStarted)
    def _phone_call_started(self, ev: PhoneCallStarted) -> None:
        self.phone_calls.inc()
        self.calls_active.inc()

    @_HANDLERS.register(PhoneCallEnded)
    def _phone_call_ended(self, ev: PhoneCallEnded) -> None:
        self.calls_active.dec()

    @_HANDLERS.register(TranslationStarted)
    def _translation_started(self, ev: TranslationStarted) -> None:
        if ev.lag_ms is not None:
            self.translation_lag.observe(ev.lag_ms / 1000.0)

    @_HANDLERS.register(PassageTranslated)
    def _passage(self, ev: PassageTranslated) -> None:
        self.passages.labels(ev.ended_by).inc()

    @_HANDLERS.register(PlannerDecision)
    def _planner_decision(self, ev: PlannerDecision) -> None:
        self.planner_decisions.labels(ev.decision, ev.action).inc()

    @_HANDLERS.register(PlannerConsulted)
    def _planner(self, ev: PlannerConsulted) -> None:
        self.planner_requests.labels(ev.verdict).inc()
        if ev.verdict in PLANNER_ANSWERED:
            self.planner_latency.observe(ev.latency_ms / 1000.0)
        for part, n in (("prompt", ev.prompt_tokens), ("completion", ev.completion_tokens)):
            if n:
                self.planner_tokens.labels(part).inc(n)

    def _turn(self, ev: Event) -> None:
        turn = self._tracker.feed(ev)
        if turn is not None and turn.latency_ms is not None:
            self.latency.observe(turn.latency_ms / 1000.0)
        self._tracker.turns.clear()  # only the open turn matters here


def _remember(d: OrderedDict[str, float], key: str, t: float) -> None:
    d[key] = t
    while len(d) > OPEN_CALLS_KEPT:
        d.popitem(last=False)


def _handled_types() -> tuple[type[Event], ...]:
    """The event types ``CreatureMetrics.observe`` has a handler for: read from its dispatch
    table (``_HANDLERS``), so a new handler is subscribed without a second list to keep (a hand-kept list
    missed the planner's two events, and their figures never moved in a live run)."""
    return tuple(t for t in _HANDLERS.registry if t not in (object, Event))


# the events ``observe`` moves a figure for: what the metrics consumer subscribes to
INPUT_TYPES: tuple[type[Event], ...] = _handled_types()
