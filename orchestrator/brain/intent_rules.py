"""Does one sentence of the creature's own speech commit it to a physical action, and if not,
which rule said no?

Two data files meet here: ``configs/intents.yaml`` (the grammar of a commitment: what commits,
what questions, hedges, negations and idioms look like, how slots are cleaned) and
``configs/actions.yaml`` (the vocabulary: each action's verbs and the sentence patterns, its
``frames``, in which they take their slots). :func:`load_rules`
(:mod:`orchestrator.brain.intent_grammar`) compiles both once; :func:`judge` applies them to a
sentence:

1. normalize the text (:mod:`orchestrator.brain.intent_text`);
2. a question or a hedge anywhere rejects the whole sentence;
3. idioms are masked, so "pick up the pace" has no verb left to match;
4. every action verb is found in one pass (a regex of all their forms); at each, the frames of
   that verb form are tried, earliest and most specific first;
5. a candidate fires unless a negation stands in its clause, unless nothing commits to it
   ("I'll" before a base form; only "I'm" before an -ing form), or unless an -ing form opening
   the sentence is the subject of another verb ("Opening the window lets the air in").

The result is a :class:`Judgement`: the match, or the :class:`Rule` that blocked the sentence
and every candidate with its own reason (``creature intent --explain``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from orchestrator.brain.intent_candidate import candidate, clean_slot, mask
from orchestrator.brain.intent_grammar import IntentRules, load_rules
from orchestrator.brain.intent_judgement import Candidate, Judgement, Match, Rule
from orchestrator.brain.intent_patterns import CompiledPattern, IntentRulesError
from orchestrator.brain.intent_text import normalize

__all__ = [
    "Candidate",
    "IntentRules",
    "IntentRulesError",
    "Judgement",
    "Match",
    "Rule",
    "clean_slot",
    "judge",
    "load_rules",
]


# -- judging --------------------------------------------------------------------------------


def _rank(cp: CompiledPattern, m: re.Match[str]) -> tuple[int, int, int, int, int, int]:
    """Which of several patterns matching at one place wins: the earliest, then the declared
    priority, then the one that fills more slots ("put it back on the shelf" over "put it
    back"), then the longer verb ("get rid of" over "get"), then the longer match."""
    verb = cp.verb(m)[0]
    filled = sum(1 for s in cp.slot_names if m.group(s)) + len(cp.slots_set(verb))
    return (m.start(), -cp.priority, -filled, -len(verb.split()), -m.end(), cp.order)


Found = tuple[int, int, int, int, int, int, CompiledPattern, re.Match[str]]


@dataclass
class _Scan:
    """The action verbs found in a masked sentence: the patterns that matched (ranked), the
    past forms seen, and the verbs none of whose patterns fit."""

    found: list[Found] = field(default_factory=list)
    pasts: list[str] = field(default_factory=list)
    unframed: list[str] = field(default_factory=list)


def _whole_sentence_rule(text: str, rules: IntentRules) -> tuple[Rule, str] | None:
    """A question or a hedge anywhere rejects the whole sentence (and so does no words)."""
    if not text.strip(" .!?,;:"):
        return Rule.EMPTY, "no words"
    if text.rstrip().endswith("?"):
        return Rule.QUESTION, "ends with '?'"
    body = text.lstrip(" \"'")
    q = rules.question_openers.search(body) or rules.questions.search(text)
    if q:
        return Rule.QUESTION, f"{q.group(0)!r} asks first"
    h = rules.hedges.search(text)
    if h:
        return Rule.HEDGE, f"{h.group(0)!r}: conditional or later"
    return None


def _mask_idioms(text: str, rules: IntentRules) -> tuple[str, list[str]]:
    """The text with every idiom masked (so "pick up the pace" has no verb left), and them."""
    masked = text
    idioms: list[str] = []
    for rx in rules.idioms:
        if rx.search(masked):
            idioms.extend(m.group(0) for m in rx.finditer(masked))
            masked = mask(masked, rx)
    return masked, idioms


def _scan(masked: str, rules: IntentRules) -> _Scan:
    """Every action verb in one pass; at each, the patterns of that verb form."""
    scan = _Scan()
    for hm in rules.heads.finditer(masked):
        word = hm.group(0)
        before_count = len(scan.found)
        for cp in rules.by_head.get(word, ()):
            fm = cp.rx.match(masked, hm.start())
            if fm:
                scan.found.append((*_rank(cp, fm), cp, fm))
        if word in rules.past_verbs and word not in rules.by_head:
            scan.pasts.append(word)
        elif len(scan.found) == before_count:
            scan.unframed.append(word)
    for cp in rules.phrasings:
        for fm in cp.rx.finditer(masked):
            scan.found.append((*_rank(cp, fm), cp, fm))
    scan.found.sort(key=lambda c: c[:6])
    return scan


def _judge_candidates(
    found: list[Found], masked: str, rules: IntentRules, complete: bool
) -> tuple[list[Candidate], Match | None]:
    """Each place's best pattern in turn until one fires; every candidate tried."""
    tried: list[Candidate] = []
    done_starts: set[int] = set()
    for start, *_rest, cp, fm in found:
        if start in done_starts:
            continue  # a less specific pattern of a verb already judged here
        cand, match = candidate(cp, fm, masked, rules, complete)
        tried.append(cand)
        if match is not None:
            return tried, match
        done_starts.add(start)
    return tried, None


def _why_nothing(scan: _Scan, idioms: list[str], rules: IntentRules) -> tuple[Rule, str]:
    """No candidate at all: a past form, an idiom, a verb without a fitting pattern, or none."""
    if scan.pasts:
        verb = scan.pasts[0]
        action, lemma = rules.past_verbs[verb]
        return Rule.TENSE, f"{verb!r} is the past of {lemma!r} ({action})"
    if idioms:
        return Rule.IDIOM, f"{idioms[0]!r} is an idiom"
    if scan.unframed:
        return (
            Rule.NO_ACTION_VERB,
            f"{scan.unframed[0]!r} starts an action verb, but no frame of it fits here "
            "(configs/actions.yaml: verbs, frames)",
        )
    return Rule.NO_ACTION_VERB, "no verb of any declared action"


def judge(sentence: str, rules: IntentRules, complete: bool = True) -> Judgement:
    """The verdict on one sentence (already split at . ! ? or ended by a pause)."""
    text = normalize(sentence, rules.text)
    phrase = sentence.strip()
    whole = _whole_sentence_rule(text, rules)
    if whole is not None:
        return Judgement(phrase, text, None, *whole)
    masked, idioms = _mask_idioms(text, rules)
    scan = _scan(masked, rules)
    tried, match = _judge_candidates(scan.found, masked, rules, complete)
    if match is not None:
        return Judgement(phrase, text, replace(match, phrase=phrase), None, "", tuple(tried))
    if tried:
        first = tried[0]
        return Judgement(phrase, text, None, first.blocked, first.detail, tuple(tried))
    return Judgement(phrase, text, None, *_why_nothing(scan, idioms, rules))
