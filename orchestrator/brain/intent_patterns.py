"""The sentence patterns of ``configs/actions.yaml`` compiled to regexes: how each action's
verbs take their slots (``frames``) and the whole phrasings that commit by themselves.

Each pattern becomes one regex for its verbs said together ("pick up the cup") and one for each
particle said after the object ("pick the cup up"), indexed under every first word it can start
with, so the judge (:mod:`orchestrator.brain.intent_rules`) only tries the patterns of the verbs
a sentence has. Macros (``{NAME}``) come from ``configs/intents.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.brain.actions import Action, ActionSet, SentencePattern
from orchestrator.brain.verb_forms import VerbForm, forms
from track2_voice.common.errors import ConfigError

SEPARABLE = frozenset({"up", "down", "on", "off", "over", "out", "away", "back", "in", "around"})
VERB_AT_START = re.compile(r"^\{verb(?::([^}]+))?\}")
SLOT_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)(?::([A-Z][A-Z0-9_]*))?\}")
FIRST_SLOT = re.compile(r"^ (\{[a-z][a-z0-9_]*(?::[A-Z][A-Z0-9_]*)?\})(.*)$", re.S)
MACRO = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
WORD_END = r"(?![a-z0-9'-])"
WORD_START = r"(?<![a-z0-9'-])"

Said = dict[str, tuple[str, VerbForm]]  # the words a verb group matched -> (verb phrase, form)


class IntentRulesError(ConfigError):
    """The intents file is missing a key or holds a regex that does not compile."""


@dataclass(frozen=True)
class CompiledPattern:
    """One sentence pattern of one action, its verbs as an alternation in group ``_v``;
    ``said`` maps the words that group matched to (declared verb phrase, form)."""

    action: Action
    rx: re.Pattern[str]
    said: Said
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


# -- compiling ------------------------------------------------------------------------------


class RegexCompiler:
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


def _default_patterns(action: Action) -> tuple[SentencePattern, ...]:
    if action.frames:
        return action.frames
    if "object" in action.slots:
        return (SentencePattern("{verb} {object}"),)
    return (SentencePattern("{verb}{TAIL}{END}"),)


def _alternation(words: list[str]) -> str:
    return (
        "(?P<_v>" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")"
    )


class PatternIndex:
    """The compiled patterns of an action set, indexed under every first word they can start
    with (so a sentence only tries the patterns of the verbs it has), the phrasings, and the
    past forms of the verbs (which say a sentence is about the past)."""

    def __init__(self, actions: ActionSet, comp: RegexCompiler) -> None:
        self.actions = actions
        self.comp = comp
        self.src = actions.source
        self.by_head: dict[str, list[CompiledPattern]] = {}
        self.phrasings: list[CompiledPattern] = []
        self.past: dict[str, tuple[str, str]] = {}
        self.order = 0

    def _compiled(
        self, action: Action, key: str, pattern: str, sp: SentencePattern, said: Said
    ) -> CompiledPattern:
        rx = self.comp.compile(key, pattern, self.src)
        names = tuple(n for n in rx.groupindex if n != "_v")
        cp = CompiledPattern(action, rx, said, dict(sp.set), sp.priority, self.order, names)
        self.order += 1
        return cp

    def _add(
        self, action: Action, i: int, sp: SentencePattern, body: str, said: Said, heads: set[str]
    ) -> None:
        where = f"{self.src}: actions.{action.name}.frames.{i}"
        pattern = _slot_groups(body, action, self.actions, where) + WORD_END
        cp = self._compiled(action, f"actions.{action.name}.frames.{i}", pattern, sp, said)
        for h in heads:
            self.by_head.setdefault(h, []).append(cp)

    def _verbs(
        self, action: Action, sp: SentencePattern, where: str
    ) -> tuple[tuple[str, ...], str]:
        """The verbs a pattern takes (its own ``{verb:a|b}`` or the action's) and its tail."""
        m = VERB_AT_START.match(sp.say)
        if m is None:
            raise IntentRulesError(f"{where}: a frame starts with {{verb}} or {{verb:a|b}}")
        verbs = tuple(v.strip() for v in m.group(1).split("|")) if m.group(1) else action.verbs
        if not verbs:
            raise IntentRulesError(f"{where}: {{verb}} but the action declares no verbs")
        return verbs, sp.say[m.end() :]

    def _forms(
        self, action: Action, verbs: tuple[str, ...], separable: bool
    ) -> tuple[Said, dict[str, Said]]:
        """Each verb's base and -ing forms said together ("pick up") and, for a particle that
        may follow the object ("pick the cup up"), apart: particle -> said -> verb."""
        together: Said = {}
        apart: dict[str, Said] = {}
        for verb in verbs:
            head, *rest = verb.lower().split()
            f = forms(head)
            for form, head_form in ((VerbForm.BASE, f.base), (VerbForm.ING, f.ing)):
                together[" ".join([head_form, *rest])] = (verb, form)
                if len(rest) == 1 and rest[0] in SEPARABLE and separable:
                    apart.setdefault(rest[0], {})[head_form] = (verb, form)
            if verb in action.verbs:
                for p in f.past:
                    self.past.setdefault(p, (action.name, verb))
        return together, apart

    def add_pattern(self, action: Action, i: int, sp: SentencePattern) -> None:
        """One regex for the verbs said together and one for each particle said apart."""
        verbs, tail = self._verbs(action, sp, f"{self.src}: actions.{action.name}.frames.{i}")
        first = FIRST_SLOT.match(tail)
        together, apart = self._forms(action, verbs, first is not None)
        heads = {w.split()[0] for w in together}
        self._add(action, i, sp, _alternation(list(together)) + tail, together, heads)
        for particle, said in apart.items():
            assert first is not None
            slot, after = first.group(1), first.group(2)
            body = f"{_alternation(list(said))} {slot} {re.escape(particle)}{after}"
            self._add(action, i, sp, body, said, set(said))

    def add_phrasing(self, action: Action, i: int, sp: SentencePattern) -> None:
        key = f"actions.{action.name}.phrasings.{i}"
        body = _slot_groups(sp.say, action, self.actions, f"{self.src}: {key}")
        self.phrasings.append(self._compiled(action, key, WORD_START + body + WORD_END, sp, {}))

    def past_verbs(self) -> dict[str, tuple[str, str]]:
        """The past forms that are not also a base form ("put", "set", "shut": the base wins)."""
        return {w: v for w, v in self.past.items() if w not in self.by_head}


def compile_patterns(actions: ActionSet, comp: RegexCompiler) -> PatternIndex:
    index = PatternIndex(actions, comp)
    for action in actions.actions.values():
        for i, sp in enumerate(_default_patterns(action)):
            index.add_pattern(action, i, sp)
        for i, sp in enumerate(action.phrasings):
            index.add_phrasing(action, i, sp)
    return index
