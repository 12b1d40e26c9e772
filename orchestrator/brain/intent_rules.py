"""Does one sentence of the creature's own speech commit it to a physical action?

The rules are data (``configs/intents.yaml``); this module compiles them once and applies
them to a sentence: reject questions, hedges and negations, mask idioms, find the earliest
action verb whose clause opens with a commitment, and pull its slots out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.brain.tool_schema import actions as tool_actions
from orchestrator.config import ConfigError
from orchestrator.yaml_file import read_yaml_mapping

DEFAULT_INTENTS_FILE = Path(__file__).resolve().parents[2] / "configs" / "intents.yaml"
SLOTS = ("object", "destination", "recipient")
MASK_CHAR = "_"
CLAUSE_BREAK = re.compile(r"[,;:]|\bbut\b|\bso\b|\bok(?:ay)?\b|\bsure\b|\balright\b|\bon it\b")
QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


class IntentRulesError(ConfigError):
    """The intents file is missing a key or holds a regex that does not compile."""


@dataclass(frozen=True)
class Match:
    """What one sentence commits the creature to, before timing is attached."""

    action: str
    slots: dict[str, str | None]
    confidence: float
    span: tuple[int, int]
    phrase: str


@dataclass
class IntentRules:
    actions: dict[str, list[re.Pattern[str]]]
    requires: dict[str, list[str]]
    commitments: list[tuple[re.Pattern[str], float]]
    progressive: re.Pattern[str]
    progressive_confidence: float
    negations: re.Pattern[str]
    questions: re.Pattern[str]
    question_openers: re.Pattern[str]
    hedges: re.Pattern[str]
    idioms: list[re.Pattern[str]]
    trailers: re.Pattern[str]
    articles: re.Pattern[str]
    aliases: dict[str, str]
    adjust: dict[str, float]
    pronouns: frozenset[str]
    source: str = field(default="")


def _expand(pattern: str, macros: dict[str, str]) -> str:
    # macros may use earlier macros; expand until stable (bounded)
    for _ in range(5):
        new = pattern
        for name, body in macros.items():
            new = new.replace("{" + name + "}", body)
        if new == pattern:
            break
        pattern = new
    return pattern


def _compile(src: str, key: str, pattern: str, macros: dict[str, str]) -> re.Pattern[str]:
    try:
        return re.compile(_expand(pattern, macros))
    except re.error as e:
        raise IntentRulesError(f"{src}: {key}: bad regex ({e}): {pattern!r}") from e


def load_rules(path: str | Path | None = None) -> IntentRules:
    """Read and compile an intents file; every error names the file and the key."""
    p = Path(path) if path else DEFAULT_INTENTS_FILE
    raw = read_yaml_mapping(p, "intents", IntentRulesError)
    src = str(p)

    def need(key: str) -> Any:
        if key not in raw:
            raise IntentRulesError(f"{src}: missing key {key!r}")
        return raw[key]

    macros = {k: str(v) for k, v in (raw.get("macros") or {}).items()}
    fillers = str(need("fillers"))
    commitments = []
    for i, c in enumerate(need("commitments")):
        if not isinstance(c, dict) or "pattern" not in c:
            raise IntentRulesError(f"{src}: commitments.{i}: expected {{pattern, confidence}}")
        rx = rf"(?:^|\b)(?:{c['pattern']})(?:\s+{fillers})*\s*$"
        commitments.append(
            (_compile(src, f"commitments.{i}", rx, macros), float(c.get("confidence", 0.8)))
        )
    actions: dict[str, list[re.Pattern[str]]] = {}
    requires: dict[str, list[str]] = {}
    known = tool_actions()
    for name, spec in (need("actions") or {}).items():
        if name not in known:
            raise IntentRulesError(
                f"{src}: actions.{name}: not an action of the do_physical_task schema "
                f"(configs/tools/do_physical_task.json); known: {list(known)}"
            )
        if not isinstance(spec, dict) or not spec.get("patterns"):
            raise IntentRulesError(f"{src}: actions.{name}: expected a mapping with 'patterns'")
        actions[name] = [
            _compile(src, f"actions.{name}.patterns.{i}", pat, macros)
            for i, pat in enumerate(spec["patterns"])
        ]
        bad = [s for s in spec.get("requires", []) if s not in SLOTS]
        if bad:
            raise IntentRulesError(f"{src}: actions.{name}.requires: unknown slot(s) {bad}")
        requires[name] = list(spec.get("requires", []))
    conf = raw.get("confidence") or {}
    return IntentRules(
        actions=actions,
        requires=requires,
        commitments=commitments,
        progressive=_compile(src, "progressive_prefix", need("progressive_prefix"), macros),
        progressive_confidence=float(raw.get("progressive_confidence", 0.85)),
        negations=_compile(src, "negations", need("negations"), macros),
        questions=_compile(src, "questions", need("questions"), macros),
        question_openers=_compile(src, "question_openers", need("question_openers"), macros),
        hedges=_compile(src, "hedges", need("hedges"), macros),
        idioms=[
            _compile(src, f"idioms.{i}", rx, macros) for i, rx in enumerate(need("idioms") or [])
        ],
        trailers=_compile(src, "slot_trailers", need("slot_trailers"), macros),
        articles=_compile(src, "slot_articles", need("slot_articles"), macros),
        aliases={str(k): str(v) for k, v in (raw.get("slot_aliases") or {}).items()},
        adjust={k: float(v) for k, v in conf.items() if k != "pronouns"},
        pronouns=frozenset(conf.get("pronouns") or []),
        source=src,
    )


def normalize(text: str) -> str:
    """Lower-case, straight quotes, single spaces: the form every rule is written against."""
    return " ".join(text.translate(QUOTES).lower().split())


def _mask_idioms(text: str, idioms: list[re.Pattern[str]]) -> str:
    for rx in idioms:
        text = rx.sub(lambda m: MASK_CHAR * len(m.group(0)), text)
    return text


def _clause_prefix(before: str) -> str:
    ends = [m.end() for m in CLAUSE_BREAK.finditer(before)]
    return (before[ends[-1] :] if ends else before).strip()


def _is_ing(verb: str) -> bool:
    return verb.endswith("ing") and verb != "bring"


def _clean_slot(value: str | None, rules: IntentRules) -> str | None:
    if value is None:
        return None
    v = value.strip(" ,.!?;:")
    while True:
        trimmed = rules.trailers.sub("", v)
        if trimmed == v:
            break
        v = trimmed
    v = rules.articles.sub("", v)
    v = v.strip()
    if not v:
        return None
    return rules.aliases.get(v, v)


def _commitment(prefix: str, verb: str, rules: IntentRules) -> float | None:
    """Confidence that the clause before the verb commits the creature, or None."""
    if _is_ing(verb):
        return rules.progressive_confidence if rules.progressive.fullmatch(prefix) else None
    for rx, conf in rules.commitments:
        if rx.search(prefix):
            return conf
    return None


def rejects(sentence: str, rules: IntentRules) -> str | None:
    """Why a whole sentence can never be a commitment (question, hedge), or None."""
    s = sentence.rstrip()
    if s.endswith("?"):
        return "question"
    body = s.lstrip(" \"'")
    if rules.question_openers.search(body) or rules.questions.search(s):
        return "question"
    if rules.hedges.search(s):
        return "hedge"
    return None


def parse_sentence(sentence: str, rules: IntentRules, complete: bool = True) -> Match | None:
    """The earliest committed action in one sentence (already split at . ! ?), or None."""
    text = normalize(sentence)
    if not text or rejects(text, rules):
        return None
    masked = _mask_idioms(text, rules.idioms)
    candidates: list[tuple[int, int, str, re.Match[str]]] = []
    for action, patterns in rules.actions.items():
        for order, rx in enumerate(patterns):
            for m in rx.finditer(masked):
                candidates.append((m.start(), order, action, m))
    candidates.sort(key=lambda c: (c[0], c[1]))
    seen_starts: set[int] = set()
    for start, _order, action, m in candidates:
        if start in seen_starts:
            continue  # a less specific pattern of the same verb
        before = masked[:start]
        if rules.negations.search(before):
            return None
        verb = m.group(0).split()[0]
        conf = _commitment(_clause_prefix(before), verb, rules)
        if conf is None:
            seen_starts.add(start)
            continue
        groups = m.groupdict()
        slots = {s: _clean_slot(groups.get(s), rules) for s in SLOTS}
        if action == "go_to" and "destination" in groups and slots["destination"] is None:
            slots["destination"] = rules.aliases.get("you", "you")  # "I'll come over"
        if "try to" in before[-12:]:
            conf += rules.adjust.get("try_to", 0.0)
        for needed in rules.requires.get(action, []):
            if not slots.get(needed):
                conf += rules.adjust.get("missing_required_slot", 0.0)
        if slots.get("object") in rules.pronouns:
            conf += rules.adjust.get("pronoun_object", 0.0)
        if not complete:
            conf += rules.adjust.get("no_sentence_end", 0.0)
        return Match(
            action=action,
            slots=slots,
            confidence=round(max(0.0, min(1.0, conf)), 3),
            span=(m.start(), m.end()),
            phrase=sentence.strip(),
        )
    return None
