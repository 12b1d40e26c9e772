"""The rules of :mod:`orchestrator.brain.intent_rules`, read and compiled: ``configs/intents.yaml``
(the grammar of a commitment) against ``configs/actions.yaml`` (each action's verbs and the
sentence patterns in which they take their slots).

Loading is kept apart from judging: this module turns two data files into regexes once (every
error names the file and the key), the judge only applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.brain.actions import ActionSet, load_actions
from orchestrator.brain.intent_patterns import (
    WORD_END,
    WORD_START,
    CompiledPattern,
    IntentRulesError,
    PatternIndex,
    RegexCompiler,
    compile_patterns,
)
from orchestrator.brain.intent_text import TextRules, compile_text_rules
from orchestrator.data_files import INTENTS_FILE
from orchestrator.yaml_file import read_yaml_mapping


@dataclass
class IntentRules:
    actions: ActionSet
    text: TextRules
    heads: re.Pattern[str]
    by_head: dict[str, list[CompiledPattern]]
    phrasings: list[CompiledPattern]
    past_verbs: dict[str, tuple[str, str]]
    clause_breaks: re.Pattern[str]
    commitments: list[tuple[re.Pattern[str], float]]
    commitment_openers: re.Pattern[str]
    progressive: re.Pattern[str]
    progressive_confidence: float
    negations: re.Pattern[str]
    negation_exceptions: re.Pattern[str] | None
    questions: re.Pattern[str]
    question_openers: re.Pattern[str]
    hedges: re.Pattern[str]
    idioms: list[re.Pattern[str]]
    gerund_subject: re.Pattern[str] | None
    participle_clause: re.Pattern[str] | None
    past_markers: re.Pattern[str] | None
    to_user: re.Pattern[str] | None
    trailers: re.Pattern[str]
    articles: re.Pattern[str]
    pronouns: frozenset[str]
    pronoun_value: str
    possessives: dict[str, str]
    aliases: dict[str, str]
    adjust: dict[str, float]
    source: str = field(default="")


# -- loading --------------------------------------------------------------------------------

_CACHE: dict[tuple, tuple[ActionSet, IntentRules]] = {}


def load_rules(path: str | Path | None = None, actions: ActionSet | None = None) -> IntentRules:
    """Read and compile an intents file against an action set (default: configs/actions.yaml).
    Every error names the file and the key. Compiled once per pair of files until either
    changes."""
    p = Path(path) if path else INTENTS_FILE
    actions = actions or load_actions()
    mtime = p.stat().st_mtime if p.exists() else None
    key = (str(p.resolve()) if p.exists() else str(p), mtime, id(actions))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is actions:
        return hit[1]
    rules = _load_rules(p, actions)
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (actions, rules)
    return rules


class _Raw:
    """The intents file as read, with the lookups every key needs."""

    def __init__(self, raw: dict[str, Any], src: str, comp: RegexCompiler) -> None:
        self.raw, self.src, self.comp = raw, src, comp

    def need(self, key: str) -> Any:
        if key not in self.raw:
            raise IntentRulesError(f"{self.src}: missing key {key!r}")
        return self.raw[key]

    def rx(self, key: str, name: str | None = None) -> re.Pattern[str]:
        return self.comp.compile(name or key, self.need(key))

    def opt(self, key: str) -> re.Pattern[str] | None:
        return self.comp.compile(key, str(self.raw[key])) if self.raw.get(key) else None

    def words(self, key: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.raw.get(key) or {}).items()}


def _check_slot_macros(actions: ActionSet, macros: dict[str, str], src: str) -> None:
    for slot in actions.slots.values():
        if slot.words and slot.words not in macros:
            raise IntentRulesError(
                f"{actions.source}: slots.{slot.name}.words: {slot.words!r} is not a macro of {src}"
            )


def _commitments(r: _Raw) -> list[tuple[re.Pattern[str], float]]:
    fillers = str(r.need("fillers"))
    out = []
    for i, c in enumerate(r.need("commitments")):
        if not isinstance(c, dict) or "pattern" not in c:
            raise IntentRulesError(f"{r.src}: commitments.{i}: expected {{pattern, confidence}}")
        start = "^" if c.get("start") else r"(?:^|\b)"
        rx = rf"{start}(?:{c['pattern']})(?: {fillers})*$"
        out.append((r.comp.compile(f"commitments.{i}", rx), float(c.get("confidence", 0.8))))
    return out


def _sentence_rules(r: _Raw) -> dict[str, Any]:
    """What commits, asks, hedges, negates or is said of the past or to the user."""
    return dict(
        clause_breaks=r.rx("clause_breaks"),
        commitment_openers=r.rx("commitment_openers"),
        progressive=r.rx("progressive_prefix"),
        progressive_confidence=float(r.raw.get("progressive_confidence", 0.85)),
        negations=r.rx("negations"),
        negation_exceptions=r.opt("negation_exceptions"),
        questions=r.rx("questions"),
        question_openers=r.rx("question_openers"),
        hedges=r.rx("hedges"),
        idioms=[r.comp.compile(f"idioms.{i}", rx) for i, rx in enumerate(r.need("idioms") or [])],
        gerund_subject=r.opt("gerund_subject"),
        participle_clause=r.opt("participle_clause"),
        past_markers=r.opt("past_markers"),
        to_user=r.opt("to_user"),
    )


def _slot_rules(r: _Raw) -> dict[str, Any]:
    """How a slot's words are cleaned before a robot gets them."""
    return dict(
        trailers=r.rx("slot_trailers"),
        articles=r.rx("slot_articles"),
        pronouns=frozenset(str(x) for x in r.raw.get("slot_pronouns") or []),
        pronoun_value=str(r.raw.get("pronoun_value", "it")),
        possessives=r.words("slot_possessives"),
        aliases=r.words("slot_aliases"),
    )


def _heads(index: PatternIndex) -> re.Pattern[str]:
    """Every verb form a pattern starts with or a past form, longest first, in one regex."""
    every = sorted({*index.by_head, *index.past_verbs()}, key=len, reverse=True)
    return re.compile(WORD_START + "(?:" + "|".join(re.escape(w) for w in every) + ")" + WORD_END)


def _load_rules(p: Path, actions: ActionSet) -> IntentRules:
    raw = read_yaml_mapping(p, "intents", IntentRulesError)
    src = str(p)
    macros = {str(k): str(v) for k, v in (raw.get("macros") or {}).items()}
    comp = RegexCompiler(src, macros)
    _check_slot_macros(actions, macros, src)
    r = _Raw(raw, src, comp)
    commitments = _commitments(r)
    text = raw.get("text") or {}
    if not isinstance(text, dict):
        raise IntentRulesError(f"{src}: text: expected a mapping")
    index = compile_patterns(actions, comp)
    return IntentRules(
        actions=actions,
        text=compile_text_rules(text, comp.compile),
        heads=_heads(index),
        by_head=index.by_head,
        phrasings=index.phrasings,
        past_verbs=index.past_verbs(),
        commitments=commitments,
        **_sentence_rules(r),
        **_slot_rules(r),
        adjust={k: float(v) for k, v in (raw.get("confidence") or {}).items()},
        source=src,
    )
