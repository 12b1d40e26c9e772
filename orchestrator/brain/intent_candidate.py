"""One action verb found in a sentence, judged (:mod:`orchestrator.brain.intent_rules` finds
them): does a negation stand in its clause, does anything commit the creature to it, is an
-ing form the subject of another verb, and how sure is the call? Its slots are cleaned here
as a robot gets them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from orchestrator.brain.actions import Action
from orchestrator.brain.intent_grammar import IntentRules
from orchestrator.brain.intent_judgement import Candidate, Match, Rule
from orchestrator.brain.intent_patterns import CompiledPattern
from orchestrator.brain.verb_forms import VerbForm

MASK_CHAR = "_"
SUBJECT_I = re.compile(r"\bi(?:'m| am)\b")
TRY = re.compile(r"\btry (?:to|and)\b")


def mask(text: str, rx: re.Pattern[str]) -> str:
    """Each match replaced by as many mask characters: spans keep their places."""
    return rx.sub(lambda m: MASK_CHAR * len(m.group(0)), text)


def _clause_prefix(before: str, rules: IntentRules) -> str:
    end = 0
    for m in rules.clause_breaks.finditer(before):
        end = m.end()
    return before[end:].strip()


def clean_slot(value: str | None, rules: IntentRules) -> str | None:
    """A slot's words as the robot gets them: no trailing "now", no article, a pronoun as
    "it", "you" as "user", "your keys" as "user's keys"."""
    if value is None:
        return None
    v = value.strip(" ,.!?;:")
    while True:
        trimmed = rules.trailers.sub("", v)
        if trimmed == v:
            break
        v = trimmed
    if v in rules.pronouns:
        return rules.pronoun_value
    v = rules.articles.sub("", v).strip()
    if v in rules.pronouns:
        return rules.pronoun_value
    if not v:
        return None
    first, _, rest = v.partition(" ")
    if rest and first in rules.possessives:
        owner = rules.possessives[first]
        v = f"{owner} {rest}" if owner else rest
    return rules.aliases.get(v, v)


def _commitment(prefix: str, rules: IntentRules) -> tuple[float, str] | None:
    for rx, conf in rules.commitments:
        m = rx.search(prefix)
        if m:
            return conf, m.group(0).strip()
    return None


def _no_commitment(prefix: str, form: VerbForm, rules: IntentRules) -> tuple[Rule, str]:
    if rules.past_markers is not None:
        m = rules.past_markers.search(prefix)
        if m:
            return Rule.TENSE, f"{m.group(0)!r} before the verb: said of the past"
    if rules.to_user is not None:
        m = rules.to_user.search(prefix)
        if m:
            return Rule.TO_USER, f"{m.group(0)!r}: the user is asked to act"
    if not prefix and form is VerbForm.BASE:
        return Rule.TO_USER, "a bare verb at the start of its clause is an imperative"
    what = 'nothing but "I\'m"' if form is not VerbForm.BASE else "a commitment (I'll, let me, ...)"
    return Rule.NO_COMMITMENT, f"{prefix!r} before the verb; it needs {what}"


def _negated(before: str, prefix: str, rules: IntentRules) -> re.Match[str] | None:
    """A negation in the candidate's clause (or before it, when the clause opens with a
    commitment: "I won't, I'll ..."), less the phrases that only look negative."""
    scope = prefix if rules.commitment_openers.match(prefix) else before
    if rules.negation_exceptions is not None:
        scope = mask(scope, rules.negation_exceptions)
    return rules.negations.search(scope)


def _committed(prefix: str, form: VerbForm, rules: IntentRules) -> tuple[float, str] | None:
    """What commits the creature to the verb: "I'll" before a base form, only "I'm" (or
    nothing) before an -ing form; a phrasing takes either."""
    if form is VerbForm.BASE:
        return _commitment(prefix, rules)
    if rules.progressive.fullmatch(prefix):
        return rules.progressive_confidence, prefix or "(none needed)"
    if form is VerbForm.PHRASE:
        return _commitment(prefix, rules)
    return None


def _gerund_subject(said: str, rest: str, rules: IntentRules) -> str | None:
    """The verb an -ing form is the subject of ("Opening the window lets ..."), if it is."""
    for rx in (rules.gerund_subject, rules.participle_clause):
        g = rx.match(rest) if rx is not None else None
        if g:
            verb_after = g.group(0).split()[-1] if g.group(0).split() else ""
            return f"{said!r} is the subject of {verb_after!r}, not what the creature does"
    return None


def _confidence(
    conf: float, prefix: str, cand: Candidate, action: Action, rules: IntentRules, complete: bool
) -> float:
    """The commitment's confidence, adjusted for what makes the call less certain."""
    if TRY.search(prefix):
        conf += rules.adjust.get("try_to", 0.0)
    for needed in action.requires:
        if not cand.slots.get(needed):
            conf += rules.adjust.get("missing_required_slot", 0.0)
    if cand.slots.get("object") == rules.pronoun_value:
        conf += rules.adjust.get("pronoun_object", 0.0)
    if not complete:
        conf += rules.adjust.get("no_sentence_end", 0.0)
    return round(max(0.0, min(1.0, conf)), 3)


def candidate(
    cp: CompiledPattern, m: re.Match[str], masked: str, rules: IntentRules, complete: bool
) -> tuple[Candidate, Match | None]:
    action = cp.action
    verb, form = cp.verb(m)
    groups = m.groupdict()
    slots: dict[str, str | None] = {s: clean_slot(groups.get(s), rules) for s in action.slots}
    slots.update(cp.slots_set(verb))
    before = masked[: m.start()]
    prefix = _clause_prefix(before, rules)
    said = m.group(0)
    cand = Candidate(action.name, verb, form, said, prefix, slots)

    def blocked(rule: Rule, detail: str) -> tuple[Candidate, None]:
        return replace(cand, blocked=rule, detail=detail), None

    neg = _negated(before, prefix, rules)
    if neg:
        return blocked(Rule.NEGATION, f"{neg.group(0)!r} before the verb")
    committed = _committed(prefix, form, rules)
    if committed is None:
        return blocked(*_no_commitment(prefix, form, rules))
    if form is VerbForm.ING and not SUBJECT_I.search(prefix):
        subject_of = _gerund_subject(said, masked[m.end() :], rules)
        if subject_of:
            return blocked(Rule.GERUND, subject_of)
    conf, commitment = committed
    match = Match(
        action=action.name,
        slots=slots,
        confidence=_confidence(conf, prefix, cand, action, rules, complete),
        span=(m.start(), m.end()),
        phrase="",
        verb=verb or said,
        commitment=commitment,
    )
    return cand, match
