"""The dialogue: both sides of the conversation, timed, and what they commit the creature to.

Moshi cannot be told about tools, so what a request is about lives in the user's words; whether
the creature takes it on lives in its own. This module holds the two together:

* the user's words (``UserWord`` events from the transcript, partial and final) are read for a
  **request** ("Could you bring me the red cup?"), held pending for
  ``slow_loop.dialogue.request_hold_s``; the user's words alone never start a task;
* the creature's sentences (judged by the intent watcher) **accept** it ("Sure!", "On it"),
  commit to it with a pronoun ("I'll get it for you"), commit to something of their own ("I'll
  close the window"), or refuse, defer or ask back ("Sorry, I can't", "Maybe later", "Which
  one?"), which make no call;
* a pronoun never reaches a robot: "it" is the request's object or the last object either side
  named (``memory_s``); with nothing to refer to, the call is not sent and the reason recorded;
* two actions in one request or commitment become a :class:`Plan` of calls in order (the brain
  sends the next when the one before succeeds and drops the rest if it fails);
* the user's "stop" / "wait, don't" is a :class:`Stop` at the word (partial words too), with no
  waiting for the creature: a person's word is the safety stop.

Plain synchronous code, no I/O: the brain feeds it and acts on what it returns, and the CLI and
the benchmark run it the same way. ``now`` is the brain's clock (seconds).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orchestrator.brain.dialogue_rules import (
    DialogueRules,
    Reply,
    Request,
    classify_reply,
    commitments_in,
    is_decline,
    is_stop,
    read_request,
)
from orchestrator.brain.intent_rules import Judgement, Match
from orchestrator.brain.intents import Intent
from orchestrator.slow_config import DialogueConfig
from track2_voice.events import UserWord

# a request is a sentence or two: the words of one utterance kept for reading it (the rest of
# a long monologue without pauses is dropped from the front, so each word costs the same)
MAX_UTTERANCE_WORDS = 40


class Binding(str, Enum):
    """How a plan's calls came about (``creature intent --explain`` and the record name it)."""

    CREATURE = "creature_commitment"  # the creature's own full commitment, nothing resolved
    ACCEPTED = "request_accepted"  # an acceptance turned the user's request into its calls
    PRONOUN = "pronoun_to_request"  # "I'll get it": the request's objects and slots
    MEMORY = "pronoun_to_last_named"  # "it" is the last object either side named


@dataclass
class Plan:
    """Calls to make, in order: the first now, each next when the one before succeeds."""

    binding: Binding
    intents: list[Intent]
    creature: str
    reply: Reply
    user: str | None = None
    waited_s: float = 0.0  # held for the user's words this long before binding

    def to_dict(self) -> dict[str, Any]:
        return {
            "binding": self.binding.value,
            "reply": self.reply.value,
            "creature": self.creature,
            "user": self.user,
            "calls": [i.id for i in self.intents],
        }


@dataclass
class Unsent:
    """A commitment that makes no call, and why (a pronoun with nothing to refer to, a
    refusal of the request, a request nobody accepted)."""

    reason: str
    creature: str | None = None
    user: str | None = None
    action: str | None = None


@dataclass
class Stop:
    """The user said stop: cancel every open call now."""

    words: str
    final: bool


@dataclass
class RequestHeard:
    request: Request


Decision = Plan | Unsent | Stop | RequestHeard


@dataclass
class _Pending:
    request: Request
    at: float
    announced: bool = False  # RequestHeard given (once the user paused, or when bound)


@dataclass
class _Held:
    """A reply that came before the user's words did (the transcript lags the voice)."""

    verdict: Judgement
    reply: Reply
    matches: list[Match]
    index: int
    t: float
    boundary: str
    at: float


@dataclass
class _Utterance:
    finals: list[str] = field(default_factory=list)
    partial: str = ""

    def text(self, with_partial: bool = True) -> str:
        words = [*self.finals, self.partial] if with_partial and self.partial else self.finals
        return " ".join(w.strip() for w in words if w.strip())


class Dialogue:
    def __init__(self, cfg: DialogueConfig, rules: DialogueRules, repeat_window_s: float = 6.0):
        self.cfg = cfg
        self.rules = rules
        self.repeat_window_s = repeat_window_s
        self._utt = _Utterance()
        self._last_word_at = -math.inf
        self._stop_word: tuple[float, str] | None = None
        self._pending: _Pending | None = None
        self._held: _Held | None = None
        self._objects: deque[tuple[str, float]] = deque(maxlen=16)
        self._recent: deque[tuple[str, str | None, float]] = deque(maxlen=32)

    @property
    def pending(self) -> Request | None:
        return self._pending.request if self._pending else None

    def user_speaking(self, now: float) -> bool:
        return now - self._last_word_at < self.cfg.user_gap_s

    # -- the user's side ------------------------------------------------------------------
    def user_word(self, w: UserWord, now: float) -> list[Decision]:
        if now - self._last_word_at > self.cfg.user_gap_s:
            self._utt = _Utterance()
        self._last_word_at = now
        if w.final:
            self._utt.finals.append(w.text)
            del self._utt.finals[:-MAX_UTTERANCE_WORDS]
            self._utt.partial = ""
        else:
            self._utt.partial = w.text
        heard = self._utt.text()
        if is_stop(heard, self.rules):
            key = (w.start, w.text.strip(" .,!?").lower())
            if key == self._stop_word:
                return []  # the final of the partial that already stopped
            self._stop_word = key
            self._pending = self._held = None
            self._utt = _Utterance()
            return [Stop(heard, w.final)]
        if not w.final:
            return []
        text = self._utt.text(with_partial=False)
        if self._pending is not None and is_decline(text, self.rules):
            req, self._pending = self._pending.request, None
            return [Unsent("the user declined their request", user=req.text)]
        req = read_request(text, self.rules)
        if req is None or (self._pending is not None and self._pending.request == req):
            return []
        self._pending = _Pending(req, now)
        for m in req.matches:
            self._remember(m, now)
        return []  # announced when the user pauses (the request may still grow: "the red ...")

    # -- the creature's side ----------------------------------------------------------------
    def creature_said(
        self,
        verdict: Judgement,
        index: int,
        t: float,
        boundary: str,
        now: float,
        repeated: bool = False,
    ) -> list[Decision]:
        """One judged sentence of the creature's (``repeated``: the watcher dropped its match
        as said within ``repeat_window_s``: a pronoun's repeat is judged here, once it is
        resolved, since "I'll get it" twice may be two different things)."""
        if repeated and (verdict.match is None or _named(verdict.match, self)):
            return []
        reply = classify_reply(verdict, self.rules)
        complete = boundary == "sentence_end"
        matches = commitments_in(verdict, self.rules, complete)
        held = _Held(verdict, reply, matches, index, t, boundary, now)
        pronoun = any(not _named(m, self) for m in matches)
        if reply is Reply.COMMITMENT and not pronoun:
            return self._commit(held, now)
        if reply in (Reply.REFUSAL, Reply.DEFERRAL):
            dropped = self._pending
            self._pending = self._held = None
            if dropped is None:
                return []
            why = "the creature refused" if reply is Reply.REFUSAL else "the creature deferred"
            return [Unsent(why, creature=verdict.sentence, user=dropped.request.text)]
        if reply is Reply.CLARIFICATION:
            if self._pending is not None:
                self._pending.at = now  # the answer comes next: keep it
            return []
        if reply is Reply.BACKCHANNEL:
            return []  # "mhm" is listening
        if reply in (Reply.COMMITMENT, Reply.PRONOUN, Reply.ACCEPTANCE):
            # the user's words may still be on their way (the transcript lags the voice):
            # bind once they have paused
            if self.user_speaking(now) or (
                self._pending is None and now - self._last_word_at <= self.cfg.accept_wait_s
            ):
                self._held = held
                return []
            if self._pending is not None:
                return self._bind(held, now)
            if matches:
                return self._commit(held, now)
        return []

    def tick(self, now: float) -> list[Decision]:
        """Expire what waited too long; bind a held reply once the user's words are in."""
        out: list[Decision] = []
        p = self._pending
        if p is not None and not p.announced and not self.user_speaking(now):
            p.announced = True
            out.append(RequestHeard(p.request))
        held = self._held
        if held is not None:
            if self._pending is not None and not self.user_speaking(now):
                out.extend(self._bind(held, now))
            elif now - held.at > self.cfg.accept_wait_s and not self.user_speaking(now):
                self._held = None
                if held.matches:
                    out.extend(self._commit(held, now))
        p = self._pending
        if p is not None and now - p.at > self.cfg.request_hold_s:
            self._pending = None
            out.append(
                Unsent(
                    f"no acceptance within {self.cfg.request_hold_s:g}s "
                    "(slow_loop.dialogue.request_hold_s)",
                    user=p.request.text,
                )
            )
        return out

    # -- binding ----------------------------------------------------------------------------
    def _bind(self, held: _Held, now: float) -> list[Decision]:
        """The pending request, taken on by the creature's reply."""
        assert self._pending is not None
        announce = [] if self._pending.announced else [RequestHeard(self._pending.request)]
        req = self._pending.request
        self._pending = self._held = None
        own = held.matches
        asked = {m.action for m in req.matches}
        if own and own[0].action not in asked and not _named(own[0], self):
            # "I'll get it" to "Can you pick up the sock?": the pronoun agrees to the request,
            # whose verb says what to do
            own = []
        if not own:
            steps = list(req.matches)
            binding = Binding.ACCEPTED
        elif own[0].action in {m.action for m in req.matches}:
            # the request's calls, with what the creature added ("... for you")
            start = next(i for i, m in enumerate(req.matches) if m.action == own[0].action)
            pronoun = self.rules.intents.pronoun_value
            steps = [
                _fill(m, own[0], pronoun) if i == start else m for i, m in enumerate(req.matches)
            ]
            asked = {m.action for m in steps[start:]}
            steps = steps[start:] + [m for m in own[1:] if m.action not in asked]
            binding = Binding.PRONOUN
        else:
            steps = list(own)
            binding = Binding.PRONOUN
        first_object = next((m.slots.get("object") for m in req.matches if _named(m, self)), None)
        return announce + self._plan(steps, held, binding, now, req.text, fallback=first_object)

    def _commit(self, held: _Held, now: float) -> list[Decision]:
        """The creature's own commitment; its pronouns resolved from the request or memory."""
        req = self._pending.request if self._pending is not None else None
        fallback = None
        binding = Binding.CREATURE
        if req is not None:
            actions = {m.action for m in req.matches}
            if any(m.action in actions for m in held.matches) or any(
                not _named(m, self) for m in held.matches
            ):
                self._pending = None
                fallback = next(
                    (m.slots.get("object") for m in req.matches if _named(m, self)), None
                )
                if any(not _named(m, self) for m in held.matches):
                    binding = Binding.PRONOUN
        self._held = None
        return self._plan(
            list(held.matches), held, binding, now, req.text if req else None, fallback
        )

    def _plan(
        self,
        steps: list[Match],
        held: _Held,
        binding: Binding,
        now: float,
        user: str | None,
        fallback: str | None = None,
    ) -> list[Decision]:
        pronoun = self.rules.intents.pronoun_value
        back = -self.rules.intents.adjust.get("pronoun_object", 0.0)
        intents: list[Intent] = []
        previous: str | None = None
        for m in steps:
            slots = dict(m.slots)
            conf = m.confidence
            if slots.get("object") == pronoun:
                ref = previous or fallback or self._last_object(now)
                if ref is None:
                    return [
                        Unsent(
                            f"{m.action}: 'it' refers to nothing the user or the creature "
                            "named: not sent",
                            creature=held.verdict.sentence,
                            user=user,
                            action=m.action,
                        )
                    ]
                if not (previous or fallback) and binding is Binding.CREATURE:
                    binding = Binding.MEMORY
                slots["object"] = ref
                conf = min(1.0, conf + back)
            if slots.get("object"):
                previous = slots["object"]
            intents.append(
                Intent(
                    m.action,
                    slots,
                    round(conf, 3),
                    held.verdict.sentence,
                    held.index,
                    held.t,
                    held.boundary,
                )
            )
        if not intents:
            return []
        first = intents[0]
        key = (first.action, first.slots.get("object"))
        if any((a, o) == key and now - at < self.repeat_window_s for a, o, at in self._recent):
            return []
        self._recent.append((*key, now))
        for i in intents:
            if i.slots.get("object"):
                self._objects.append((str(i.slots["object"]), now))
        return [Plan(binding, intents, held.verdict.sentence, held.reply, user, now - held.at)]

    def _remember(self, m: Match, now: float) -> None:
        obj = m.slots.get("object")
        if obj and obj != self.rules.intents.pronoun_value:
            self._objects.append((obj, now))

    def _last_object(self, now: float) -> str | None:
        for obj, at in reversed(self._objects):
            if now - at <= self.cfg.memory_s:
                return obj
        return None


def _named(m: Match, d: Dialogue) -> bool:
    """The match names its object (or needs none): not a pronoun."""
    return m.slots.get("object") != d.rules.intents.pronoun_value


def _fill(request: Match, own: Match, pronoun: str) -> Match:
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
