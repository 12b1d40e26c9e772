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
from dataclasses import dataclass, field

from orchestrator.brain.dialogue_decisions import (
    Binding,
    Decision,
    Plan,
    RequestHeard,
    Stop,
    Unsent,
)
from orchestrator.brain.dialogue_plans import Held, PlanMaker, fill
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
from orchestrator.brain.intent_rules import Judgement

__all__ = ["Binding", "Decision", "Dialogue", "Plan", "RequestHeard", "Stop", "Unsent"]
from orchestrator.slow_config import DialogueConfig
from track2_voice.events import UserWord

# a request is a sentence or two: the words of one utterance kept for reading it (the rest of
# a long monologue without pauses is dropped from the front, so each word costs the same)
MAX_UTTERANCE_WORDS = 40


@dataclass
class _Pending:
    request: Request
    at: float
    announced: bool = False  # RequestHeard given (once the user paused, or when bound)
    utterance: int = 0  # which utterance of the user's asked
    replies: int = 0  # the creature's sentences since: a bare "okay" later answers something else


@dataclass
class _Utterance:
    finals: list[str] = field(default_factory=list)
    partial: str = ""
    number: int = 0

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
        self._held: Held | None = None
        back = -rules.intents.adjust.get("pronoun_object", 0.0)
        self._plans = PlanMaker(cfg, rules.intents.pronoun_value, back, repeat_window_s)

    @property
    def pending(self) -> Request | None:
        return self._pending.request if self._pending else None

    def user_speaking(self, now: float) -> bool:
        return now - self._last_word_at < self.cfg.user_gap_s

    # -- the user's side ------------------------------------------------------------------
    def user_word(self, w: UserWord, now: float) -> list[Decision]:
        if now - self._last_word_at > self.cfg.user_gap_s:
            self._utt = _Utterance(number=self._utt.number + 1)
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
            self._utt = _Utterance(number=self._utt.number + 1)
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
        self._pending = _Pending(req, now, utterance=self._utt.number)
        for m in req.matches:
            self._plans.remember(m, now)
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
        if repeated and (verdict.match is None or self._plans.named(verdict.match)):
            return []
        reply = self._reply(verdict)
        matches = commitments_in(verdict, self.rules, boundary == "sentence_end")
        held = Held(verdict, reply, matches, index, t, boundary, now)
        pronoun = any(not self._plans.named(m) for m in matches)
        if reply is Reply.COMMITMENT and not pronoun:
            return self._commit(held, now)
        if reply in (Reply.REFUSAL, Reply.DEFERRAL):
            return self._turned_down(reply, verdict)
        if reply is Reply.CLARIFICATION:
            if self._pending is not None:
                self._pending.at = now  # the answer comes next: keep it
            return []
        if reply in (Reply.COMMITMENT, Reply.PRONOUN, Reply.ACCEPTANCE):
            return self._taken_on(held, now)
        return []  # a backchannel ("mhm") is listening; anything else answers nothing

    def _reply(self, verdict: Judgement) -> Reply:
        """What the sentence says to the pending request; an acceptance long after the
        request answers something else ("Okay, that's interesting")."""
        reply = classify_reply(verdict, self.rules)
        if self._pending is not None:
            self._pending.replies += 1
            if reply is Reply.ACCEPTANCE and self._pending.replies > self.cfg.reply_sentences:
                reply = Reply.NONE
        return reply

    def _turned_down(self, reply: Reply, verdict: Judgement) -> list[Decision]:
        """A refusal or a deferral drops the pending request (and any held reply)."""
        dropped = self._pending
        self._pending = self._held = None
        if dropped is None:
            return []
        why = "the creature refused" if reply is Reply.REFUSAL else "the creature deferred"
        return [Unsent(why, creature=verdict.sentence, user=dropped.request.text)]

    def _taken_on(self, held: Held, now: float) -> list[Decision]:
        """A commitment or an acceptance: the user's words may still be on their way (the
        transcript lags the voice), so it is held until they have paused, then bound."""
        if self.user_speaking(now) or (
            self._pending is None and now - self._last_word_at <= self.cfg.accept_wait_s
        ):
            self._held = held
            return []
        if self._pending is not None:
            return self._bind(held, now)
        if held.matches:
            return self._commit(held, now)
        return []

    def tick(self, now: float) -> list[Decision]:
        """Expire what waited too long; bind a held reply once the user's words are in."""
        out: list[Decision] = []
        p = self._pending
        if p is not None and not self.user_speaking(now):
            if not p.announced:
                p.announced = True
                out.append(RequestHeard(p.request))
            if self._utt.number != p.utterance and self._utt.finals:
                # the user said something else since, and it asked for nothing: moved on
                self._pending = self._held = None
                out.append(Unsent("the user moved on", user=p.request.text))
                return out
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
    def _bind(self, held: Held, now: float) -> list[Decision]:
        """The pending request, taken on by the creature's reply."""
        assert self._pending is not None
        announce = [] if self._pending.announced else [RequestHeard(self._pending.request)]
        req = self._pending.request
        self._pending = self._held = None
        own = held.matches
        asked = {m.action for m in req.matches}
        if own and own[0].action not in asked and not self._plans.named(own[0]):
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
                fill(m, own[0], pronoun) if i == start else m for i, m in enumerate(req.matches)
            ]
            asked = {m.action for m in steps[start:]}
            steps = steps[start:] + [m for m in own[1:] if m.action not in asked]
            binding = Binding.PRONOUN
        else:
            steps = list(own)
            binding = Binding.PRONOUN
        return announce + self._plans.plan(
            steps, held, binding, now, req.text, fallback=self._plans.first_object(req)
        )

    def _commit(self, held: Held, now: float) -> list[Decision]:
        """The creature's own commitment; its pronouns resolved from the request or memory."""
        req = self._pending.request if self._pending is not None else None
        fallback = user = None
        binding = Binding.CREATURE
        if req is not None:
            actions = {m.action for m in req.matches}
            pronoun = any(not self._plans.named(m) for m in held.matches)
            if pronoun or any(m.action in actions for m in held.matches):
                self._pending = None  # the creature answered it in its own words
                fallback, user = self._plans.first_object(req), req.text
                if pronoun:
                    binding = Binding.PRONOUN
        self._held = None
        return self._plans.plan(list(held.matches), held, binding, now, user, fallback)
