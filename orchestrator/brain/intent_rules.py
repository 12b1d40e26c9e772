"""Does one sentence of the creature's own speech commit it to a physical action, and if not,
which rule said no?

Two data files meet here: ``configs/intents.yaml`` (the grammar of a commitment: what commits,
what questions, hedges, negations and idioms look like, how slots are cleaned) and
``configs/actions.yaml`` (the vocabulary: each action's verbs and the frames in which they take
their slots). :func:`load_rules` compiles both once; :func:`judge` applies them to a sentence:

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
from enum import Enum
from pathlib import Path
from typing import Any

from orchestrator.brain.actions import Action, ActionSet, Frame, load_actions
from orchestrator.brain.intent_text import TextRules, compile_text_rules, normalize
from orchestrator.brain.verb_forms import VerbForm, forms
from orchestrator.data_files import INTENTS_FILE
from orchestrator.yaml_file import read_yaml_mapping
from track2_voice.common.errors import ConfigError

MASK_CHAR = "_"
SEPARABLE = frozenset({"up", "down", "on", "off", "over", "out", "away", "back", "in", "around"})
VERB_AT_START = re.compile(r"^\{verb(?::([^}]+))?\}")
SLOT_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)(?::([A-Z][A-Z0-9_]*))?\}")
FIRST_SLOT = re.compile(r"^ (\{[a-z][a-z0-9_]*(?::[A-Z][A-Z0-9_]*)?\})(.*)$", re.S)
MACRO = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
WORD_END = r"(?![a-z0-9'-])"
WORD_START = r"(?<![a-z0-9'-])"
SUBJECT_I = re.compile(r"\bi(?:'m| am)\b")
TRY = re.compile(r"\btry (?:to|and)\b")


class IntentRulesError(ConfigError):
    """The intents file is missing a key or holds a regex that does not compile."""


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


@dataclass(frozen=True)
class CompiledFrame:
    """One frame of one action, its verbs as an alternation in group ``_v``; ``said`` maps
    the words that group matched to (declared verb phrase, form)."""

    action: Action
    rx: re.Pattern[str]
    said: dict[str, tuple[str, VerbForm]]
    sets: dict[str, str]
    priority: int
    order: int
    slot_names: tuple[str, ...]

    def verb(self, m: re.Match[str]) -> tuple[str, VerbForm]:
        if "_v" not in self.rx.groupindex:
            return "", VerbForm.PHRASE
        return self.said[m.group("_v")]

    def slots_set(self, verb: str) -> dict[str, str]:
        a = self.action
        if a.verb_slot and verb in a.verb_values and a.verb_slot not in self.sets:
            return {**self.sets, a.verb_slot: a.verb_values[verb]}
        return self.sets


@dataclass
class IntentRules:
    actions: ActionSet
    text: TextRules
    heads: re.Pattern[str]
    by_head: dict[str, list[CompiledFrame]]
    phrasings: list[CompiledFrame]
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


# -- compiling ------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, src: str, macros: dict[str, str]) -> None:
        self.src = src
        self.macros = macros

    def expand(self, pattern: str, key: str) -> str:
        for _ in range(8):
            new = MACRO.sub(lambda m: self._macro(m, key), pattern)
            if new == pattern:
                return new
            pattern = new
        raise IntentRulesError(f"{self.src}: {key}: macros nest too deeply: {pattern[:80]!r}")

    def _macro(self, m: re.Match[str], key: str) -> str:
        name = m.group(1)
        if name not in self.macros:
            raise IntentRulesError(f"{self.src}: {key}: unknown macro {{{name}}}")
        return "(?:" + self.macros[name] + ")"

    def compile(self, key: str, pattern: str, src: str | None = None) -> re.Pattern[str]:
        try:
            return re.compile(self.expand(pattern, key))
        except re.error as e:
            raise IntentRulesError(f"{src or self.src}: {key}: bad regex ({e}): {pattern!r}") from e


def _slot_groups(template: str, action: Action, actions: ActionSet, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        slot, macro = m.group(1), m.group(2)
        if slot == "verb":
            raise IntentRulesError(f"{where}: {{verb}} may only start a frame")
        if slot not in action.slots:
            raise IntentRulesError(
                f"{where}: {{{slot}}} is not one of this action's slots {list(action.slots)}"
            )
        words = macro or actions.slots[slot].words
        if not words:
            raise IntentRulesError(
                f"{where}: slot {slot!r} has no words macro; write {{{slot}:MACRO}}"
            )
        return f"(?P<{slot}>{{{words}}})"

    return SLOT_PLACEHOLDER.sub(sub, template)


def _default_frames(action: Action) -> tuple[Frame, ...]:
    if action.frames:
        return action.frames
    if "object" in action.slots:
        return (Frame("{verb} {object}"),)
    return (Frame("{verb}{TAIL}{END}"),)


def _alternation(words: list[str]) -> str:
    return (
        "(?P<_v>" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")"
    )


def _compile_frames(
    actions: ActionSet, comp: _Compiler
) -> tuple[dict[str, list[CompiledFrame]], list[CompiledFrame], dict[str, tuple[str, str]]]:
    """Each frame becomes one regex for its verbs said together ("pick up the cup") and one
    for each particle said after the object ("pick the cup up"); each is indexed under every
    first word it can start with, so a sentence only tries the frames of the verbs it has."""
    by_head: dict[str, list[CompiledFrame]] = {}
    phrasings: list[CompiledFrame] = []
    past: dict[str, tuple[str, str]] = {}
    order = 0
    src = actions.source

    def add(action: Action, i: int, frame: Frame, body: str, said: dict, heads: set[str]) -> None:
        nonlocal order
        where = f"{src}: actions.{action.name}.frames.{i}"
        pattern = _slot_groups(body, action, actions, where) + WORD_END
        rx = comp.compile(f"actions.{action.name}.frames.{i}", pattern, src)
        names = tuple(n for n in rx.groupindex if n != "_v")
        cf = CompiledFrame(action, rx, said, dict(frame.set), frame.priority, order, names)
        order += 1
        for h in heads:
            by_head.setdefault(h, []).append(cf)

    for action in actions.actions.values():
        for i, frame in enumerate(_default_frames(action)):
            where = f"{src}: actions.{action.name}.frames.{i}"
            m = VERB_AT_START.match(frame.say)
            if m is None:
                raise IntentRulesError(f"{where}: a frame starts with {{verb}} or {{verb:a|b}}")
            verbs = tuple(v.strip() for v in m.group(1).split("|")) if m.group(1) else action.verbs
            if not verbs:
                raise IntentRulesError(f"{where}: {{verb}} but the action declares no verbs")
            tail = frame.say[m.end() :]
            first = FIRST_SLOT.match(tail)
            together: dict[str, tuple[str, VerbForm]] = {}
            apart: dict[str, dict[str, tuple[str, VerbForm]]] = {}  # particle -> said -> verb
            for verb in verbs:
                words = verb.lower().split()
                head, rest = words[0], words[1:]
                f = forms(head)
                for form, head_form in ((VerbForm.BASE, f.base), (VerbForm.ING, f.ing)):
                    together[" ".join([head_form, *rest])] = (verb, form)
                    if len(rest) == 1 and rest[0] in SEPARABLE and first is not None:
                        apart.setdefault(rest[0], {})[head_form] = (verb, form)
                if verb in action.verbs:
                    for p in f.past:
                        past.setdefault(p, (action.name, verb))
            heads = {w.split()[0] for w in together}
            add(action, i, frame, _alternation(list(together)) + tail, together, heads)
            for particle, said in apart.items():
                assert first is not None
                body = f"{_alternation(list(said))} {first.group(1)} {re.escape(particle)}{first.group(2)}"
                add(action, i, frame, body, said, set(said))
        for i, frame in enumerate(action.phrasings):
            where = f"{src}: actions.{action.name}.phrasings.{i}"
            body = _slot_groups(frame.say, action, actions, where)
            rx = comp.compile(
                f"actions.{action.name}.phrasings.{i}", WORD_START + body + WORD_END, src
            )
            names = tuple(rx.groupindex)
            phrasings.append(
                CompiledFrame(action, rx, {}, dict(frame.set), frame.priority, order, names)
            )
            order += 1
    for word in list(past):
        if word in by_head:  # "put", "set", "shut": the base form wins
            del past[word]
    return by_head, phrasings, past


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


def _load_rules(p: Path, actions: ActionSet) -> IntentRules:
    raw = read_yaml_mapping(p, "intents", IntentRulesError)
    src = str(p)

    def need(key: str) -> Any:
        if key not in raw:
            raise IntentRulesError(f"{src}: missing key {key!r}")
        return raw[key]

    macros = {str(k): str(v) for k, v in (raw.get("macros") or {}).items()}
    comp = _Compiler(src, macros)
    for slot in actions.slots.values():
        if slot.words and slot.words not in macros:
            raise IntentRulesError(
                f"{actions.source}: slots.{slot.name}.words: {slot.words!r} is not a macro of {src}"
            )

    def opt(key: str) -> re.Pattern[str] | None:
        return comp.compile(key, str(raw[key])) if raw.get(key) else None

    fillers = str(need("fillers"))
    commitments = []
    for i, c in enumerate(need("commitments")):
        if not isinstance(c, dict) or "pattern" not in c:
            raise IntentRulesError(f"{src}: commitments.{i}: expected {{pattern, confidence}}")
        start = "^" if c.get("start") else r"(?:^|\b)"
        rx = rf"{start}(?:{c['pattern']})(?: {fillers})*$"
        commitments.append((comp.compile(f"commitments.{i}", rx), float(c.get("confidence", 0.8))))
    text = raw.get("text") or {}
    if not isinstance(text, dict):
        raise IntentRulesError(f"{src}: text: expected a mapping")
    by_head, phrasings, past = _compile_frames(actions, comp)
    every = sorted({*by_head, *past}, key=len, reverse=True)
    heads = re.compile(WORD_START + "(?:" + "|".join(re.escape(w) for w in every) + ")" + WORD_END)
    conf = raw.get("confidence") or {}
    return IntentRules(
        actions=actions,
        text=compile_text_rules(text, lambda k, rx: comp.compile(k, rx)),
        heads=heads,
        by_head=by_head,
        phrasings=phrasings,
        past_verbs=past,
        clause_breaks=comp.compile("clause_breaks", need("clause_breaks")),
        commitments=commitments,
        commitment_openers=comp.compile("commitment_openers", need("commitment_openers")),
        progressive=comp.compile("progressive_prefix", need("progressive_prefix")),
        progressive_confidence=float(raw.get("progressive_confidence", 0.85)),
        negations=comp.compile("negations", need("negations")),
        negation_exceptions=opt("negation_exceptions"),
        questions=comp.compile("questions", need("questions")),
        question_openers=comp.compile("question_openers", need("question_openers")),
        hedges=comp.compile("hedges", need("hedges")),
        idioms=[comp.compile(f"idioms.{i}", rx) for i, rx in enumerate(need("idioms") or [])],
        gerund_subject=opt("gerund_subject"),
        participle_clause=opt("participle_clause"),
        past_markers=opt("past_markers"),
        to_user=opt("to_user"),
        trailers=comp.compile("slot_trailers", need("slot_trailers")),
        articles=comp.compile("slot_articles", need("slot_articles")),
        pronouns=frozenset(str(x) for x in raw.get("slot_pronouns") or []),
        pronoun_value=str(raw.get("pronoun_value", "it")),
        possessives={str(k): str(v) for k, v in (raw.get("slot_possessives") or {}).items()},
        aliases={str(k): str(v) for k, v in (raw.get("slot_aliases") or {}).items()},
        adjust={k: float(v) for k, v in conf.items()},
        source=src,
    )


# -- judging --------------------------------------------------------------------------------


def _mask(text: str, rx: re.Pattern[str]) -> str:
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


def _candidate(
    frame: CompiledFrame, m: re.Match[str], masked: str, rules: IntentRules, complete: bool
) -> tuple[Candidate, Match | None]:
    action = frame.action
    verb, form = frame.verb(m)
    groups = m.groupdict()
    slots: dict[str, str | None] = {s: clean_slot(groups.get(s), rules) for s in action.slots}
    slots.update(frame.slots_set(verb))
    before = masked[: m.start()]
    prefix = _clause_prefix(before, rules)
    said = m.group(0)
    cand = Candidate(action.name, verb, form, said, prefix, slots)

    def blocked(rule: Rule, detail: str) -> tuple[Candidate, None]:
        return replace(cand, blocked=rule, detail=detail), None

    scope = prefix if rules.commitment_openers.match(prefix) else before
    if rules.negation_exceptions is not None:
        scope = _mask(scope, rules.negation_exceptions)
    neg = rules.negations.search(scope)
    if neg:
        return blocked(Rule.NEGATION, f"{neg.group(0)!r} before the verb")
    committed: tuple[float, str] | None = None
    if form is VerbForm.BASE:
        committed = _commitment(prefix, rules)
    else:
        if rules.progressive.fullmatch(prefix):
            committed = (rules.progressive_confidence, prefix or "(none needed)")
        elif form is VerbForm.PHRASE:
            committed = _commitment(prefix, rules)
    if committed is None:
        return blocked(*_no_commitment(prefix, form, rules))
    if form is VerbForm.ING and not SUBJECT_I.search(prefix):
        rest = masked[m.end() :]
        for rx in (rules.gerund_subject, rules.participle_clause):
            g = rx.match(rest) if rx is not None else None
            if g:
                verb_after = g.group(0).split()[-1] if g.group(0).split() else ""
                return blocked(
                    Rule.GERUND,
                    f"{said!r} is the subject of {verb_after!r}, not what the creature does",
                )
    conf, commitment = committed
    if TRY.search(prefix):
        conf += rules.adjust.get("try_to", 0.0)
    for needed in action.requires:
        if not slots.get(needed):
            conf += rules.adjust.get("missing_required_slot", 0.0)
    if slots.get("object") == rules.pronoun_value:
        conf += rules.adjust.get("pronoun_object", 0.0)
    if not complete:
        conf += rules.adjust.get("no_sentence_end", 0.0)
    match = Match(
        action=action.name,
        slots=slots,
        confidence=round(max(0.0, min(1.0, conf)), 3),
        span=(m.start(), m.end()),
        phrase="",
        verb=verb or said,
        commitment=commitment,
    )
    return cand, match


def _rank(frame: CompiledFrame, m: re.Match[str]) -> tuple[int, int, int, int, int, int]:
    """Which of several frames matching at one place wins: the earliest, then the declared
    priority, then the one that fills more slots ("put it back on the shelf" over "put it
    back"), then the longer verb ("get rid of" over "get"), then the longer match."""
    verb = frame.verb(m)[0]
    filled = sum(1 for s in frame.slot_names if m.group(s)) + len(frame.slots_set(verb))
    return (m.start(), -frame.priority, -filled, -len(verb.split()), -m.end(), frame.order)


def judge(sentence: str, rules: IntentRules, complete: bool = True) -> Judgement:
    """The verdict on one sentence (already split at . ! ? or ended by a pause)."""
    text = normalize(sentence, rules.text)
    phrase = sentence.strip()
    if not text.strip(" .!?,;:"):
        return Judgement(phrase, text, None, Rule.EMPTY, "no words")
    if text.rstrip().endswith("?"):
        return Judgement(phrase, text, None, Rule.QUESTION, "ends with '?'")
    body = text.lstrip(" \"'")
    q = rules.question_openers.search(body) or rules.questions.search(text)
    if q:
        return Judgement(phrase, text, None, Rule.QUESTION, f"{q.group(0)!r} asks first")
    h = rules.hedges.search(text)
    if h:
        return Judgement(phrase, text, None, Rule.HEDGE, f"{h.group(0)!r}: conditional or later")
    masked = text
    idioms: list[str] = []
    for rx in rules.idioms:
        if rx.search(masked):
            idioms.extend(m.group(0) for m in rx.finditer(masked))
            masked = _mask(masked, rx)
    found: list[tuple[int, int, int, int, int, int, CompiledFrame, re.Match[str]]] = []
    pasts: list[str] = []
    unframed: list[str] = []
    for hm in rules.heads.finditer(masked):
        word = hm.group(0)
        before_count = len(found)
        for frame in rules.by_head.get(word, ()):
            fm = frame.rx.match(masked, hm.start())
            if fm:
                found.append((*_rank(frame, fm), frame, fm))
        if word in rules.past_verbs and word not in rules.by_head:
            pasts.append(word)
        elif len(found) == before_count:
            unframed.append(word)
    for frame in rules.phrasings:
        for fm in frame.rx.finditer(masked):
            found.append((*_rank(frame, fm), frame, fm))
    found.sort(key=lambda c: c[:6])
    tried: list[Candidate] = []
    done_starts: set[int] = set()
    for start, *_rest, frame, fm in found:
        if start in done_starts:
            continue  # a less specific frame of a verb already judged here
        cand, match = _candidate(frame, fm, masked, rules, complete)
        tried.append(cand)
        if match is not None:
            match = replace(match, phrase=phrase)
            return Judgement(phrase, text, match, None, "", tuple(tried))
        done_starts.add(start)
    if tried:
        first = tried[0]
        return Judgement(phrase, text, None, first.blocked, first.detail, tuple(tried))
    if pasts:
        verb = pasts[0]
        action, lemma = rules.past_verbs[verb]
        return Judgement(
            phrase, text, None, Rule.TENSE, f"{verb!r} is the past of {lemma!r} ({action})"
        )
    if idioms:
        return Judgement(phrase, text, None, Rule.IDIOM, f"{idioms[0]!r} is an idiom")
    if unframed:
        return Judgement(
            phrase,
            text,
            None,
            Rule.NO_ACTION_VERB,
            f"{unframed[0]!r} starts an action verb, but no frame of it fits here "
            "(configs/actions.yaml: verbs, frames)",
        )
    return Judgement(phrase, text, None, Rule.NO_ACTION_VERB, "no verb of any declared action")
