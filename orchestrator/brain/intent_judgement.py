"""What the intent judge says of one sentence (:mod:`orchestrator.brain.intent_rules`): the
:class:`Match` it commits to, or the :class:`Rule` that blocked it, with every
:class:`Candidate` tried (``creature intent --explain`` prints them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from orchestrator.brain.verb_forms import VerbForm


class Rule(str, Enum):
    """Why a sentence did not fire (``creature intent --explain`` prints the value)."""

    EMPTY = "empty"
    QUESTION = "question"
    HEDGE = "hedge"
    NEGATION = "negation"
    IDIOM = "idiom"
    TENSE = "tense"
    TO_USER = "addressed_to_user"
    GERUND = "gerund_subject"
    NO_COMMITMENT = "no_commitment"
    NO_ACTION_VERB = "no_action_verb"


@dataclass(frozen=True)
class Match:
    """What one sentence commits the creature to, before timing is attached."""

    action: str
    slots: dict[str, str | None]
    confidence: float
    span: tuple[int, int]
    phrase: str
    verb: str = ""
    commitment: str = ""


@dataclass(frozen=True)
class Candidate:
    """One action verb found in a sentence, and what became of it."""

    action: str
    verb: str  # the declared verb phrase ("pick up")
    form: VerbForm
    said: str  # the words the frame matched
    prefix: str  # the clause before it
    slots: dict[str, str | None]
    blocked: Rule | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "action": self.action,
            "verb": self.verb,
            "form": self.form.value,
            "said": self.said,
            "before": self.prefix,
            "slots": {k: v for k, v in self.slots.items() if v is not None},
        }
        if self.blocked is not None:
            d["blocked"] = self.blocked.value
            d["why"] = self.detail
        return d


@dataclass(frozen=True)
class Judgement:
    """The verdict on one sentence: a match, or the rule that blocked it."""

    sentence: str
    text: str  # normalized, as the rules saw it
    match: Match | None
    rule: Rule | None = None
    detail: str = ""
    candidates: tuple[Candidate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sentence": self.sentence, "normalized": self.text}
        if self.match is not None:
            m = self.match
            d.update(
                fired=True,
                action=m.action,
                verb=m.verb,
                commitment=m.commitment,
                slots=m.slots,
                confidence=m.confidence,
            )
        else:
            d.update(fired=False, rule=self.rule.value if self.rule else None, why=self.detail)
        if self.candidates:
            d["candidates"] = [c.to_dict() for c in self.candidates]
        return d
