"""Live metrics in the Prometheus text format, served at ``/metrics`` on the face server.

Why a bus consumer: the fast loop must not do any bookkeeping for an observer, so every
figure is derived from the typed events it already publishes (and the brain's), by a task on
the I/O loop that reads its own bounded subscription. If that task falls behind, the bus drops
its oldest events and counts them (``creature_consumer_dropped_events_total{consumer=
"metrics"}``); the loop never waits. What is not an event is read when Prometheus scrapes: the
face server's and the phone's connections, each consumer's drops. Every metric is listed in
docs/metrics.md.

The endpoint needs the access token (the one in the face URL), as ``Authorization: Bearer``
or ``?token=``; ``metrics.enabled: false`` removes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

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
from orchestrator.brain.states import STATES
from orchestrator.bus import Bus, Subscription
from orchestrator.runtime.call_events import CallEnded, CallStarted
from orchestrator.runtime.io_loop import IoLoop
from track2_voice.common.web import bearer, token_ok
from track2_voice.events import (
    Connected,
    Disconnected,
    Event,
    FrameEvent,
    LoopStarted,
    LoopStopped,
    Rollover,
    UserSpeechEnded,
    UserSpeechStarted,
    UserWord,
    VoiceError,
)

log = logging.getLogger(__name__)

PATH = "/metrics"
CONSUMER = "metrics"
INPUT_TYPES: tuple[type[Event], ...] = (
    FrameEvent,
    LoopStarted,
    LoopStopped,
    UserSpeechStarted,
    UserSpeechEnded,
    UserWord,
    Connected,
    Disconnected,
    Rollover,
    VoiceError,
    IntentDetected,
    ToolCallSent,
    ToolRejected,
    ToolStatusChanged,
    ToolProgress,
    RobotConnected,
    RobotDisconnected,
    StateChanged,
    RobotRefused,
    StatusRefused,
    CallStarted,
    CallEnded,
    TranslationStarted,
    PassageTranslated,
)
OPEN_CALLS_KEPT = 1024  # calls whose status times are still being measured (oldest forgotten)
# bucket bounds in seconds; the 80 ms frame budget is a bound wherever it matters
STEP_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12,
                0.16, 0.25, 0.5)  # fmt: skip
OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08)
FACE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64)
DECISION_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
STATUS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
LATENCY_BUCKETS = (0.08, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
WORD_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TRANSLATION_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0)
PLANNER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0)


@dataclass(frozen=True)
class Family:
    """One metric family: the ``CreatureMetrics`` attribute that holds it and its declaration."""

    attr: str
    kind: type[MetricWrapperBase]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # histograms
    states: list[str] | None = None  # enums

    def declare(self, registry: CollectorRegistry) -> Any:
        extra: dict[str, Any] = {}
        if self.buckets is not None:
            extra["buckets"] = self.buckets
        if self.states is not None:
            extra["states"] = self.states
        return self.kind(self.name, self.help, self.labels, registry=registry, **extra)


# in exposition order
FAMILIES = (
    Family("frames", Counter, "creature_frames", "Frames the fast loop completed."),
    Family(
        "misses",
        Counter,
        "creature_deadline_misses",
        "Frames finished later than 80 ms after their audio was complete.",
    ),
    Family(
        "model_step",
        Histogram,
        "creature_model_step_seconds",
        "Time of one backend step (model) per frame.",
        buckets=STEP_BUCKETS,
    ),
    Family(
        "overhead",
        Histogram,
        "creature_loop_overhead_seconds",
        "Fast-loop time per frame outside the backend step.",
        buckets=OVERHEAD_BUCKETS,
    ),
    Family(
        "face_send",
        Histogram,
        "creature_face_send_seconds",
        "From a frame's time to its face state being handed to the face server.",
        buckets=FACE_BUCKETS,
    ),
    Family("intents", Counter, "creature_intents", "Committed actions heard.", ("action",)),
    Family(
        "decision",
        Histogram,
        "creature_intent_to_call_seconds",
        "From the frame of a phrase's last text piece to its tool call being sent.",
        buckets=DECISION_BUCKETS,
    ),
    Family(
        "calls",
        Counter,
        "creature_tool_calls",
        "Tool calls sent (stored and offered).",
        ("action",),
    ),
    Family(
        "rejected",
        Counter,
        "creature_tool_calls_rejected",
        "Tool calls the safety gate refused.",
        ("action",),
    ),
    Family(
        "progress",
        Gauge,
        "creature_call_progress",
        "The latest progress (0..1) a robot reported on a running call, by action.",
        ("action",),
    ),
    Family(
        "progress_reports",
        Counter,
        "creature_call_progress_reports",
        "Progress reports robots sent on running calls.",
        ("action",),
    ),
    Family(
        "finished",
        Counter,
        "creature_tool_calls_finished",
        "Tool calls by their final status.",
        ("action", "status"),
    ),
    Family(
        "status_after",
        Histogram,
        "creature_tool_status_seconds",
        "From a tool call being sent to each status the robot (or the creature) reported.",
        ("status",),
        buckets=STATUS_BUCKETS,
    ),
    Family("turns", Counter, "creature_user_turns", "Times the user stopped speaking."),
    Family(
        "latency",
        Histogram,
        "creature_response_latency_seconds",
        "From the end of the user's speech to the creature's first audio after it.",
        buckets=LATENCY_BUCKETS,
    ),
    Family(
        "word_latency",
        Histogram,
        "creature_user_word_latency_seconds",
        "From the end of a user's word in the mic audio to its transcript event, partial "
        "(final=false) or settled (final=true).",
        ("final",),
        buckets=WORD_BUCKETS,
    ),
    Family(
        "connects",
        Counter,
        "creature_backend_connects",
        "Sessions opened with a remote model server.",
    ),
    Family(
        "disconnects",
        Counter,
        "creature_backend_disconnects",
        "Sessions with a remote model server that were lost or refused.",
    ),
    Family(
        "rollovers",
        Counter,
        "creature_rollovers",
        "Model state resets (step budget).",
        ("reason",),
    ),
    Family("errors", Counter, "creature_voice_errors", "Frames or links that failed.", ("where",)),
    Family(
        "robot_connects",
        Counter,
        "creature_robot_connects",
        "Robot connections on the robot channel.",
    ),
    Family("robot_disconnects", Counter, "creature_robot_disconnects", "Robots that went away."),
    Family(
        "robot_refused",
        Counter,
        "creature_robot_refused",
        "Robot connections turned away (a name already connected, a wrong token, a foreign "
        "Origin).",
    ),
    Family(
        "status_refused",
        Counter,
        "creature_tool_status_refused",
        "Status updates the creature did not take, by error code.",
        ("code",),
    ),
    Family("phone_calls", Counter, "creature_phone_calls", "Telephone calls the creature took."),
    Family(
        "calls_active",
        Gauge,
        "creature_phone_calls_active",
        "Telephone calls in progress now.",
    ),
    Family(
        "translation_lag",
        Histogram,
        "creature_translation_lag_seconds",
        "Interpreter mode: first translated audio after the visitor's speech, per passage.",
        buckets=TRANSLATION_BUCKETS,
    ),
    Family(
        "passages",
        Counter,
        "creature_translated_passages",
        "Interpreter mode: passages that ended, by how (eos, quiet, session).",
        ("ended_by",),
    ),
    Family(
        "planner_latency",
        Histogram,
        "creature_planner_latency_seconds",
        "Planner requests that got an answer: time from the request to the answer.",
        buckets=PLANNER_BUCKETS,
    ),
    Family(
        "planner_requests",
        Counter,
        "creature_planner_requests",
        "Planner requests by verdict (calls, none, malformed, error, timeout, superseded).",
        ("verdict",),
    ),
    Family(
        "planner_decisions",
        Counter,
        "creature_planner_decisions",
        "What the planner policy did (added, duplicate, confirmed, vetoed, ...), per action.",
        ("decision", "action"),
    ),
    Family(
        "planner_tokens",
        Counter,
        "creature_planner_tokens",
        "Tokens the planner endpoint reported, prompt and completion.",
        ("part",),
    ),
    Family("robots", Gauge, "creature_robots_connected", "Robots connected now."),
    Family(
        "sessions",
        Gauge,
        "creature_voice_sessions",
        "Voice sessions running with a live backend (0 while a remote one is lost).",
    ),
    Family("faces", Gauge, "creature_faces_connected", "Face pages connected now."),
    Family(
        "phones",
        Gauge,
        "creature_phones_connected",
        "Phones streaming audio now (0 or 1).",
    ),
    Family("state", Enum, "creature_state", "The creature's state machine.", states=STATES),
)


PLANNER_ANSWERED = ("calls", "none", "malformed")  # verdicts that came with an answer


class _BusDrops(Collector):
    """Each consumer's dropped events, read from the bus when Prometheus scrapes (live; the
    record's ``loop_stopped`` line has the same counts at the end)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def collect(self) -> Iterator[CounterMetricFamily]:
        c = CounterMetricFamily(
            "creature_consumer_dropped_events",
            "Events a bus consumer lost because it fell behind (drop-oldest mailbox).",
            labels=["consumer"],
        )
        for name, n in sorted(self.bus.drops().items()):
            c.add_metric([name], n)
        yield c


class CreatureMetrics:
    """The metric families (``FAMILIES``, each kept in its ``attr``) and how each event moves
    them. ``observe`` runs on the I/O loop."""

    def __init__(self, bus: Bus | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        disable_created_metrics()  # no ``*_created`` series: Prometheus has no use for them
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        if bus is not None:
            r.register(_BusDrops(bus))
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

    # -- events ------------------------------------------------------------------------------
    def observe(self, ev: Event) -> None:
        if isinstance(ev, FrameEvent):
            self.frames.inc()
            if ev.missed:
                self.misses.inc()
            self.model_step.observe(ev.model_ms / 1000.0)
            self.overhead.observe(ev.overhead_ms / 1000.0)
            self._mic.frame(ev)
            self._turn(ev)
        elif isinstance(ev, UserWord):
            lag = word_latency_s(ev, self._mic)
            if lag is not None:
                self.word_latency.labels("true" if ev.final else "false").observe(lag)
        elif isinstance(ev, IntentDetected):
            self.intents.labels(ev.intent.action).inc()
            _remember(self._intent_t, ev.intent.id, ev.intent.t)
        elif isinstance(ev, ToolCallSent):
            action = str(ev.arguments.get("action"))
            self.calls.labels(action).inc()
            _remember(self._sent_t, ev.id, ev.t)
            t_intent = self._intent_t.pop(ev.intent, None)
            if t_intent is not None:
                self.decision.observe(max(0.0, ev.t - t_intent))
        elif isinstance(ev, ToolStatusChanged):
            sent = self._sent_t.get(ev.id)
            if sent is not None:
                self.status_after.labels(ev.status.value).observe(max(0.0, ev.t - sent))
            if ev.status.terminal:
                self.finished.labels(str(ev.action), ev.status.value).inc()
                self._sent_t.pop(ev.id, None)
        elif isinstance(ev, ToolRejected):
            self.rejected.labels(ev.action).inc()
        elif isinstance(ev, ToolProgress):
            self.progress_reports.labels(str(ev.action)).inc()
            if ev.progress is not None:
                self.progress.labels(str(ev.action)).set(ev.progress)
        elif isinstance(ev, StateChanged):
            self.state.state(ev.dst)
        elif isinstance(ev, (UserSpeechStarted, UserSpeechEnded)):
            if isinstance(ev, UserSpeechEnded):
                self.turns.inc()
            self._turn(ev)
        elif isinstance(ev, RobotConnected):
            self.robot_connects.inc()
            self.robots.set(ev.robots)  # until watch_robots reads the brain itself
        elif isinstance(ev, RobotDisconnected):
            self.robot_disconnects.inc()
            self.robots.set(ev.robots)
        elif isinstance(ev, Connected):
            self.connects.inc()
            self.sessions.set(1)
        elif isinstance(ev, Disconnected):
            self.disconnects.inc()
            self.sessions.set(0)
        elif isinstance(ev, Rollover):
            self.rollovers.labels(ev.reason).inc()
        elif isinstance(ev, VoiceError):
            self.errors.labels(ev.where).inc()
        elif isinstance(ev, RobotRefused):
            self.robot_refused.inc()
        elif isinstance(ev, StatusRefused):
            self.status_refused.labels(ev.code).inc()
        elif isinstance(ev, CallStarted):
            self.phone_calls.inc()
            self.calls_active.inc()
        elif isinstance(ev, CallEnded):
            self.calls_active.dec()
        elif isinstance(ev, TranslationStarted):
            if ev.lag_ms is not None:
                self.translation_lag.observe(ev.lag_ms / 1000.0)
        elif isinstance(ev, PassageTranslated):
            self.passages.labels(ev.ended_by).inc()
        elif isinstance(ev, PlannerConsulted):
            self._planner(ev)
        elif isinstance(ev, PlannerDecision):
            self.planner_decisions.labels(ev.decision, ev.action).inc()
        elif isinstance(ev, LoopStarted):
            # a remote backend counts once its server holds the session (``connected``)
            self._remote = ev.backend == "remote"
            self.sessions.set(0 if self._remote else 1)
        elif isinstance(ev, LoopStopped):
            self.sessions.set(0)

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


async def metrics_feed(sub: Subscription, metrics: CreatureMetrics) -> None:
    """The consumer task on the I/O loop. A failing event is logged and skipped."""
    while True:
        for ev in await sub.get_batch():
            try:
                metrics.observe(ev)
            except Exception:
                log.exception("metrics: event %s failed", ev.kind)


def metrics_route(metrics: CreatureMetrics, token: str) -> Route:
    """``GET /metrics`` with the access token (``Authorization: Bearer`` or ``?token=``)."""

    async def endpoint(request: Request) -> Response:
        given = bearer(request.headers) or request.query_params.get("token")
        if not token_ok(given, token):
            return PlainTextResponse(
                "the creature's metrics need its access token "
                "(Authorization: Bearer TOKEN, or ?token=TOKEN)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="creature"'},
            )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route(PATH, endpoint, methods=["GET"])


class MetricsService:
    """The metrics of one session and their consumer task on the I/O loop, from before the
    brain and the robots start to the end (the face server serves them while it runs)."""

    def __init__(
        self, bus: Bus, queue_size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bus = bus
        self.queue_size = queue_size
        self.metrics = CreatureMetrics(bus, clock)
        self._io: IoLoop | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task | None = None

    def start(self, io: IoLoop) -> MetricsService:
        async def go() -> None:
            self._sub = self.bus.subscribe_async(CONSUMER, self.queue_size, INPUT_TYPES)
            self._task = asyncio.create_task(metrics_feed(self._sub, self.metrics), name=CONSUMER)

        self._io = io
        io.run(go())
        return self

    def stop(self) -> None:
        async def go() -> None:
            if self._task is not None:
                self._task.cancel()
            if self._sub is not None:
                self.bus.unsubscribe(self._sub)

        if self._io is not None and self._io.running:
            self._io.run(go())
        self._io = None
