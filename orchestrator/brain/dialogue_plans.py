"""From what the creature committed to, the calls it makes (:mod:`orchestrator.brain.dialogue`
decides *whether*; this decides *what*): a reply held with its matches, each match an intent,
its pronoun resolved to something either side named, and the same first call not made twice
within the repeat window. A pronoun never reaches a robot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from orchestrator.brain.dialogue_decisions import Binding, Decision, Plan, Unsent
from orchestrator.brain.dialogue_rules import Reply, Request
from orchestrator.brain.intent_rules import Judgement, Match
from orchestrator.brain.intents import Intent
from orchestrator.slow_config import DialogueConfig


@dataclass
class Held:
    """A reply of the creature's, with what it commits to (held while the user's words, which
    the transcript brings later than the voice, may still come)."""

    verdict: Judgement
    reply: Reply
    matches: list[Match]
    index: int
    t: float
    boundary: str
    at: float


class PlanMaker:
    """The objects either side named lately (for "it") and the calls made lately (for the
    repeat window), and the plans made with them."""

    def __init__(self, cfg: DialogueConfig, pronoun: str, pronoun_adjust: float, repeat_s: float):
        self.cfg = cfg
        self.pronoun = pronoun
        self.pronoun_adjust = pronoun_adjust  # the confidence a pronoun object cost, given back
        self.repeat_s = repeat_s
        self._objects: deque[tuple[str, float]] = deque(maxlen=16)
        self._recent: deque[tuple[str, str | None, float]] = deque(maxlen=32)

    def named(self, m: Match) -> bool:
        """The match names its object (or needs none): not a pronoun."""
        return m.slots.get("object") != self.pronoun

    def first_object(self, req: Request) -> str | None:
        """The first object the request names (never a pronoun)."""
        for m in req.matches:
            obj = m.slots.get("object")
            if obj and obj != self.pronoun:
                return obj
        return None

    def remember(self, m: Match, now: float) -> None:
        obj = m.slots.get("object")
        if obj and obj != self.pronoun:
            self._objects.append((obj, now))

    def last_object(self, now: float) -> str | None:
        for obj, at in reversed(self._objects):
            if now - at <= self.cfg.memory_s:
                return obj
        return None

    def plan(
        self,
        steps: list[Match],
        held: Held,
        binding: Binding,
        now: float,
        user: str | None,
        fallback: str | None = None,
    ) -> list[Decision]:
        resolved = self._resolve(steps, held, now, fallback)
        if isinstance(resolved, Match):
            why = f"{resolved.action}: 'it' refers to nothing the user or the creature named"
            sentence = held.verdict.sentence
            return [Unsent(f"{why}: not sent", sentence, user, resolved.action)]
        intents, from_memory = resolved
        if from_memory and binding is Binding.CREATURE:
            binding = Binding.MEMORY
        if not intents or self._said_lately(intents[0], now):
            return []
        for i in intents:
            if i.slots.get("object"):
                self._objects.append((str(i.slots["object"]), now))
        return [Plan(binding, intents, held.verdict.sentence, held.reply, user, now - held.at)]

    def _resolve(
        self, steps: list[Match], held: Held, now: float, fallback: str | None
    ) -> tuple[list[Intent], bool] | Match:
        """Each step as an intent, its pronoun ("it") resolved to the step before's object,
        else ``fallback`` (the request's), else the last object named (then the second value
        says so); a step whose pronoun refers to nothing is returned instead."""
        intents: list[Intent] = []
        previous: str | None = None
        from_memory = False
        for m in steps:
            slots = dict(m.slots)
            conf = m.confidence
            if slots.get("object") == self.pronoun:
                ref = previous or fallback or self.last_object(now)
                if ref is None:
                    return m
                from_memory = from_memory or not (previous or fallback)
                slots["object"] = ref
                conf = min(1.0, conf + self.pronoun_adjust)
            previous = slots.get("object") or previous
            v = held.verdict
            intents.append(
                Intent(
                    m.action, slots, round(conf, 3), v.sentence, held.index, held.t, held.boundary
                )
            )
        return intents, from_memory

    def _said_lately(self, first: Intent, now: float) -> bool:
        """The same first call (action and object) within the repeat window: not again."""
        key = (first.action, first.slots.get("object"))
        if any((a, o) == key and now - at < self.repeat_s for a, o, at in self._recent):
            return True
        self._recent.append((*key, now))
        return False


def fill(request: Match, own: Match, pronoun: str) -> Match:
    """The request's match, with the slots the creature's own words add (never a pronoun)."""
    slots = dict(request.slots)
    for k, v in own.slots.items():
        if v is not None and slots.get(k) is None and v != pronoun:
            slots[k] = v
    return Match(
        request.action,
        slots,
        max(request.confidence, own.confidence),
        request.span,
        request.phrase,
        request.verb,
        own.commitment,
    )
