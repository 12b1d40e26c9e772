"""The metric families ``/metrics`` serves, in exposition order, as data: each one's name,
help, labels and buckets (docs/metrics.md lists them for people). ``CreatureMetrics``
declares each of them and keeps it in the attribute the family names. ``BusDrops`` is the one
family read from the bus when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from orchestrator.brain.states import STATES
from orchestrator.bus import Bus

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


class BusDrops(Collector):
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
