"""The planner's policy inside the brain: when to ask, and what an answer changes.

``augment``: after each sentence of the creature, the planner may add calls the rules missed
(a proposal the rules already made is a ``duplicate``). ``confirm``: a rules call is held until
the planner proposes the same call (``confirmed``), answers without it (``vetoed``), or
``confirm_wait_s`` passes (``on_confirm_timeout``). ``planner``: the rules' calls are recorded
and ``ignored``; the planner's are the calls.

Never in the way: asking is handing a request to a port that returns at once (the runtime's
``PlannerClient`` runs it as a task on the I/O loop; a newer request supersedes the one in
flight); a stop (an action that cancels every call) is never held; the fast loop knows nothing
of any of it. Everything the policy decides is a ``PlannerDecision`` event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from orchestrator.brain.events import PlannerConsulted, PlannerDecision
from orchestrator.brain.intents import Intent
from orchestrator.brain.outbox import Outbox
from orchestrator.brain.planner import (
    DialogueWindow,
    OpenCall,
    PlannerRequest,
    Speaker,
    build_request,
    normalise_object,
)
from orchestrator.brain.planner_answer import PlannerAnswer, Proposal, read_answer, same_call
from orchestrator.brain.tool_schema import ToolSchema
from orchestrator.slow_config import PlannerConfig
from track2_voice.events import DiscreteEvent

PLANNER_CONFIDENCE = 0.9  # a proposal that passed every check (the gate wants >= min_confidence)


class PlannerPort(Protocol):
    """Where the brain hands its questions: ``ask`` returns at once; the answer comes back
    through the ``answered`` callback the port was built with, on the brain's loop."""

    def ask(self, request: PlannerRequest) -> None: ...


@dataclass(slots=True)
class Held:
    intent: Intent
    timer: asyncio.TimerHandle | None


class Deliberation:
    def __init__(
        self,
        cfg: PlannerConfig,
        schema: ToolSchema,
        allowed: frozenset[str],
        outbox: Outbox,
        submit: Callable[[Intent], object],
        emit: Callable[[DiscreteEvent], None],
        clock: Callable[[], float],
    ) -> None:
        self.cfg = cfg
        self.schema = schema
        # the actions a proposal may name: allowed, and not a stop (a stop is the rules' and the
        # person's, never held and never the planner's to make)
        self.allowed = tuple(
            a for a in schema.actions.names if a in allowed and not schema.actions.cancels_all(a)
        )
        self.outbox = outbox
        self.submit = submit
        self.emit = emit
        self.clock = clock
        self.dialogue = DialogueWindow()
        self.port: PlannerPort | None = None
        # the connected bodies: (the actions they declared, None when any body declared nothing
        # or none is connected; a line describing them), set by the brain
        self.bodies: Callable[[], tuple[frozenset[str] | None, str]] = lambda: (None, "")
        self.held: dict[str, Held] = {}
        self._made: deque[tuple[str, str | None, float]] = deque(maxlen=64)
        self._next_id = 0
        self._last_sentence = ""
        self._sentence_pending = False

    @property
    def policy(self) -> str:
        return self.cfg.policy

    # -- what the brain tells it ------------------------------------------------------------------
    def heard(self, speaker: Speaker, text: str, t: float) -> None:
        self.dialogue.add(speaker, text, t)
        if speaker == "creature":
            self._last_sentence = text
            self._sentence_pending = self.policy != "confirm"

    def frame_done(self) -> None:
        """After the rules have acted on a frame: a sentence of the creature's that ended in it
        is a question for the planner, which then sees the rules' calls among the open ones."""
        if self._sentence_pending:
            self._sentence_pending = False
            self._ask("creature_sentence")

    def rules_intent(self, intent: Intent) -> bool:
        """A rules call: True when it may be sent now (``augment``); else the policy holds it
        (``confirm``) or records it (``planner``)."""
        obj = normalise_object(intent.slots.get("object"))
        if self.policy == "augment":
            self._made.append((intent.action, obj, self.clock()))
            return True
        if self.policy == "planner":
            self._decide(
                "ignored",
                intent.action,
                obj,
                intent=intent.id,
                reason="slow_loop.planner.policy is planner: the rules do not make calls",
            )
            return False
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.cfg.confirm_wait_s, self._at_bound, intent.id)
        self.held[intent.id] = Held(intent, timer)
        self._ask("confirm")
        return False

    # -- asking -------------------------------------------------------------------------------------
    def _ask(self, trigger: str) -> None:
        if self.port is None:
            return
        now = self.clock()
        turns = self.dialogue.recent(now, self.cfg.window_s, self.cfg.max_turns)
        held = [
            {"action": h.intent.action, **{k: v for k, v in h.intent.slots.items() if v}}
            for h in self.held.values()
        ]
        declared, described = self.bodies()
        # a proposal no connected body can do would only be refused (no_capable_robot)
        allowed = (
            self.allowed if declared is None else tuple(a for a in self.allowed if a in declared)
        )
        body, objects = build_request(
            self.cfg, self.schema, allowed, turns, now, self._open_calls(), held, described
        )
        self._next_id += 1
        self.port.ask(
            PlannerRequest(
                id=self._next_id,
                trigger=trigger,
                version=self.dialogue.version,
                body=body,
                objects=objects,
                allowed=allowed,
                held=list(self.held),
            )
        )

    def _open_calls(self) -> list[OpenCall]:
        return [
            OpenCall(c.id, c.args.get("action", ""), c.args.get("object"), c.status.value)
            for c in self.outbox.open_calls()
        ][-16:]

    # -- the answer ---------------------------------------------------------------------------------
    def read(self, request: PlannerRequest, body: object) -> PlannerAnswer:
        objects = request.objects if self.cfg.ground_objects else None
        return read_answer(body, self.schema, request.allowed, objects)

    def answered(self, request: PlannerRequest, answer: PlannerAnswer, latency_ms: float) -> None:
        """On the brain's loop: record the answer, then apply the policy to it."""
        self.emit(
            PlannerConsulted(
                request=request.id,
                trigger=request.trigger,
                policy=self.policy,
                verdict=answer.verdict.value,
                latency_ms=round(latency_ms, 3),
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                proposals=[{"action": p.action, **p.slots} for p in answer.proposals],
                refused=[{"said": r.said, "reason": r.reason} for r in answer.refused],
                held=request.held,
                detail=answer.detail,
            )
        )
        if answer.verdict.value in ("superseded", "timeout", "error", "malformed"):
            return  # held calls wait for a newer answer or their bound
        if self.policy == "confirm":
            self._confirm(request, answer.proposals)
        else:
            for p in answer.proposals:
                self._add(request, p)

    def _confirm(self, request: PlannerRequest, proposals: list[Proposal]) -> None:
        agreed: set[int] = set()  # the proposals that confirmed a held call
        for intent_id in request.held:
            held = self.held.pop(intent_id, None)
            if held is None:
                continue  # already settled (its bound passed, or an earlier answer)
            if held.timer is not None:
                held.timer.cancel()
            intent = held.intent
            obj = intent.slots.get("object")
            match = [i for i, p in enumerate(proposals) if same_call(intent.action, obj, p)]
            if match:
                agreed.update(match)
                self._decide(
                    "confirmed", intent.action, normalise_object(obj), request.id, intent.id
                )
                self.submit(intent)
            else:
                self._decide(
                    "vetoed",
                    intent.action,
                    normalise_object(obj),
                    request.id,
                    intent.id,
                    reason="the planner did not propose this call",
                )
        for i, p in enumerate(proposals):
            if i not in agreed:
                self._decide(
                    "not_asked",
                    p.action,
                    p.slots.get("object"),
                    request.id,
                    reason="confirm: the planner only confirms the rules' calls",
                )

    def _add(self, request: PlannerRequest, p: Proposal) -> None:
        obj = p.slots.get("object")
        now = self.clock()
        if any(
            a == p.action and o == obj and now - t <= self.cfg.window_s for a, o, t in self._made
        ):
            why = "the same call was made in this window"
            self._decide("duplicate", p.action, obj, request.id, reason=why)
            return
        for call in self.outbox.open_calls():
            if (
                call.args.get("action") == p.action
                and normalise_object(call.args.get("object")) == obj
            ):
                self._decide("duplicate", p.action, obj, request.id, reason=f"open call {call.id}")
                return
        self._made.append((p.action, obj, now))
        intent = Intent(
            action=p.action,
            slots=dict(p.slots),
            confidence=PLANNER_CONFIDENCE,
            phrase=self._last_sentence or f"(planner) {p.action}",
            index=-1,  # a proposal belongs to no frame (its call event is stamped)
            t=now,
            boundary="planner",
        )
        self._decide("added", p.action, obj, request.id, intent.id)
        self.submit(intent)

    def _at_bound(self, intent_id: str) -> None:
        held = self.held.pop(intent_id, None)
        if held is None:
            return
        intent = held.intent
        obj = normalise_object(intent.slots.get("object"))
        why = f"no planner answer within {self.cfg.confirm_wait_s:g}s"
        if self.cfg.on_confirm_timeout == "send":
            self._decide("sent_at_bound", intent.action, obj, intent=intent.id, reason=why)
            self.submit(intent)
        else:
            self._decide("dropped_at_bound", intent.action, obj, intent=intent.id, reason=why)

    def _decide(
        self,
        decision: str,
        action: str,
        obj: str | None,
        request: int | None = None,
        intent: str | None = None,
        reason: str = "",
    ) -> None:
        self.emit(
            PlannerDecision(
                decision=decision,
                policy=self.policy,
                action=action,
                object=obj,
                request=request,
                intent=intent,
                reason=reason,
            )
        )

    def close(self) -> None:
        for held in self.held.values():
            if held.timer is not None:
                held.timer.cancel()
        self.held.clear()
