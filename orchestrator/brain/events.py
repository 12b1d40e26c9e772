"""What the brain decides, as typed events on the bus (and so as lines in the session record).

Each event says one thing the creature did or heard about its body: an intent it heard in its
own words, a tool call it sent, a status a robot reported, a state change, a new look. The
brain reacts to its own events by type; the record writes them with ``to_dict()`` in the
documented format (docs/slow_loop.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.brain.calls import CallStatus
from orchestrator.brain.conversation_events import (
    CallChainDropped,
    DialogueBound,
    DialogueUnsent,
    PassageTranslated,
    PlannerConsulted,
    PlannerDecision,
    TranslationStarted,
    UserRequestHeard,
    UserStopHeard,
)
from orchestrator.brain.intents import Intent
from track2_voice.events import DiscreteEvent

__all__ = [
    "AffectChanged",
    "CallChainDropped",
    "CallsCancelled",
    "DialogueBound",
    "DialogueUnsent",
    "IntentDetected",
    "OutboxResumed",
    "PassageTranslated",
    "PlannerConsulted",
    "PlannerDecision",
    "RobotConnected",
    "RobotDisconnected",
    "RobotRefused",
    "RobotReplaced",
    "ServiceError",
    "StateChanged",
    "StatusRefused",
    "ToolCallSent",
    "ToolProgress",
    "ToolRejected",
    "ToolStatusChanged",
    "TranslationStarted",
    "UserRequestHeard",
    "UserStopHeard",
    "WebhookResult",
]


@dataclass(slots=True, kw_only=True)
class IntentDetected(DiscreteEvent):
    """A committed physical action heard in the creature's words. ``lag_ms``: from the frame
    that ended the phrase to the decision (None when flushed at the end of a session)."""

    kind: ClassVar[str] = "intent"
    intent: Intent
    lag_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, **self.intent.to_dict()}
        if self.lag_ms is not None:
            d["lag_ms"] = round(self.lag_ms, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntentDetected:
        named = ("id", "action", "confidence", "phrase", "index", "t", "boundary")
        slots = {k: v for k, v in d.items() if k not in (*named, "kind", "lag_ms")}
        intent = Intent(
            action=d["action"],
            slots=slots,
            confidence=float(d["confidence"]),
            phrase=d["phrase"],
            index=int(d["index"]),
            t=float(d["t"]),
            boundary=d["boundary"],
            id=d["id"],
        )
        # the line keeps the intent's place only (the phrase's last frame)
        return cls(index=intent.index, t=intent.t, intent=intent, lag_ms=d.get("lag_ms"))


@dataclass(slots=True, kw_only=True)
class ToolCallSent(DiscreteEvent):
    """A ``do_physical_task`` call stored in the outbox and offered to the robot (``robot`` is
    None when none is connected: it waits in the outbox)."""

    kind: ClassVar[str] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any]
    intent: str
    robot: str | None


@dataclass(slots=True, kw_only=True)
class ToolRejected(DiscreteEvent):
    """The safety gate refused a call; ``reason`` names the rule. ``code``:
    ``no_capable_robot`` when no connected body can do it (docs/bodies.md), else None."""

    kind: ClassVar[str] = "tool_rejected"
    id: str
    action: str
    reason: str
    intent: str
    code: str | None = None


@dataclass(slots=True, kw_only=True)
class ToolProgress(DiscreteEvent):
    """A robot's progress on a running call: ``progress`` 0..1 and/or a short ``text``."""

    kind: ClassVar[str] = "tool_progress"
    id: str
    action: str | None
    progress: float | None
    text: str | None
    source: str


@dataclass(slots=True, kw_only=True)
class ToolStatusChanged(DiscreteEvent):
    """A call moved in its lifecycle; ``source`` is the robot's name, ``http`` or ``creature``."""

    kind: ClassVar[str] = "tool_status"
    id: str
    status: CallStatus
    reason: str | None
    action: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        d = DiscreteEvent.to_dict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolStatusChanged:
        return cls(
            index=d["index"],
            t=d["t"],
            id=d["id"],
            status=CallStatus(d["status"]),
            reason=d.get("reason"),
            action=d.get("action"),
            source=d["source"],
        )


@dataclass(slots=True, kw_only=True)
class CallsCancelled(DiscreteEvent):
    """The creature said stop: every open call is being cancelled."""

    kind: ClassVar[str] = "tool_cancel"
    reason: str
    ids: list[str]


@dataclass(slots=True, kw_only=True)
class WebhookResult(DiscreteEvent):
    kind: ClassVar[str] = "webhook"
    id: str
    state: str
    reason: str | None


@dataclass(slots=True, kw_only=True)
class RobotConnected(DiscreteEvent):
    """A robot is ready for calls; ``body`` and ``actions`` are what its hello declared
    (None: it declared nothing, so it can do everything)."""

    kind: ClassVar[str] = "robot_connected"
    robot: str
    robots: int
    body: str | None = None
    actions: list[str] | None = None


@dataclass(slots=True, kw_only=True)
class RobotDisconnected(DiscreteEvent):
    kind: ClassVar[str] = "robot_disconnected"
    robot: str
    reason: str
    robots: int


@dataclass(slots=True, kw_only=True)
class RobotRefused(DiscreteEvent):
    """A robot connection was turned away: ``reason`` says why (a robot of that name is already
    connected, a wrong token, a foreign Origin)."""

    kind: ClassVar[str] = "robot_refused"
    robot: str
    reason: str
    peer: str


@dataclass(slots=True, kw_only=True)
class RobotReplaced(DiscreteEvent):
    """A new connection took over a connected robot's name (``on_duplicate: take_over``)."""

    kind: ClassVar[str] = "robot_replaced"
    robot: str
    old_peer: str
    new_peer: str


@dataclass(slots=True, kw_only=True)
class StatusRefused(DiscreteEvent):
    """A status update the creature did not take: ``code`` is the StatusErrorCode (an illegal
    transition, a call sent to another connection); ``current`` is the call's status, kept."""

    kind: ClassVar[str] = "tool_status_refused"
    id: str
    status: str
    current: str | None
    code: str
    source: str


@dataclass(slots=True, kw_only=True)
class OutboxResumed(DiscreteEvent):
    """Calls left open by an earlier run, resumed on start."""

    kind: ClassVar[str] = "outbox_resumed"
    open: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class StateChanged(DiscreteEvent):
    kind: ClassVar[str] = "state"
    src: str
    dst: str
    trigger: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "index": self.index,
            "t": round(self.t, 6),
            "from": self.src,
            "to": self.dst,
            "trigger": self.trigger,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StateChanged:
        return cls(index=d["index"], t=d["t"], src=d["from"], dst=d["to"], trigger=d["trigger"])


@dataclass(slots=True, kw_only=True)
class AffectChanged(DiscreteEvent):
    """A new look: a state's baseline (``passing`` false) or an event's passing look."""

    kind: ClassVar[str] = "affect"
    cause: str
    emotion: str
    valence: float
    arousal: float
    mood: str | None
    passing: bool


@dataclass(slots=True, kw_only=True)
class ServiceError(DiscreteEvent):
    """Part of the creature's I/O could not do its job (e.g. a port was busy); the rest runs.
    Its own kind: a record's ``error`` lines are the voice side's (``VoiceError``)."""

    kind: ClassVar[str] = "service_error"
    where: str
    error: str
