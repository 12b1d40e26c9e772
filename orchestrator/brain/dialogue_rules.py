"""Reading both sides of a conversation: what the user asks for, how the creature answers, and
which of the user's words stop the robot.

The user's request is read with the creature's own grammar (:mod:`intent_rules`): its opener is
replaced by a commitment and its persons are swapped ("Could you bring me the red cup?" ->
"i'll bring you the red cup"), so every action, verb, frame and slot rule of
``configs/actions.yaml`` and ``configs/intents.yaml`` works on both sides and is written once.
The phrases themselves (openers, acceptances, refusals, the user's stop) are data in
``configs/dialogue.yaml``; this module only applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from orchestrator.brain.intent_rules import IntentRules, Judgement, Match, judge
from orchestrator.brain.intent_text import normalize
from orchestrator.data_files import DIALOGUE_FILE
from orchestrator.yaml_file import read_yaml_mapping
from track2_voice.common.errors import ConfigError

SENTENCES = re.compile(r"[^.!?]+[.!?]*")
COMMIT = "i'll "
PROGRESSIVE = "i'm "


class DialogueRulesError(ConfigError):
    """The dialogue file is missing a key or holds a regex that does not compile."""


class Reply(str, Enum):
    """What one sentence of the creature says to a pending request."""

    COMMITMENT = "commitment"  # a full commitment of its own ("I'll get the red cup")
    PRONOUN = "pronoun_commitment"  # "I'll get it", "I'll do that"
    ACCEPTANCE = "acceptance"  # "Sure!", "On it", "Coming right up"
    BACKCHANNEL = "backchannel"  # a bare "okay" (listening while the user talks)
    REFUSAL = "refusal"  # "Sorry, I can't"
    DEFERRAL = "deferral"  # "Maybe later"
    CLARIFICATION = "clarification"  # "Which one?"
    NONE = "none"


@dataclass(frozen=True)
class Rewrite:
    rx: re.Pattern[str]
    template: str


@dataclass(frozen=True)
class DialogueRules:
    intents: IntentRules
    interjections: re.Pattern[str]
    courtesies: re.Pattern[str] | None
    requests: tuple[Rewrite, ...]
    persons: dict[str, str]
    persons_rx: re.Pattern[str] | None
    stop: re.Pattern[str]
    not_stop: re.Pattern[str] | None
    declines: re.Pattern[str] | None
    refusals: re.Pattern[str]
    deferrals: re.Pattern[str]
    clarifications: re.Pattern[str]
    acceptances: re.Pattern[str]
    pronoun_commitments: re.Pattern[str]
    backchannels: re.Pattern[str]
    continuations: re.Pattern[str]
    source: str = ""


@dataclass(frozen=True)
class Request:
    """One sentence of the user's that asks for one or more actions, in order."""

    text: str  # as the user said it
    said: str  # as the creature's grammar read it ("i'll bring you the red cup")
    matches: tuple[Match, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "read_as": self.said,
            "calls": [
                {"action": m.action, **{k: v for k, v in m.slots.items() if v is not None}}
                for m in self.matches
            ],
        }


class _Reader:
    """The dialogue file as read: its sections and regexes, each error naming file and key."""

    def __init__(self, raw: dict, src: str) -> None:
        self.raw, self.src = raw, src

    def section(self, name: str) -> dict:
        s = self.raw.get(name)
        if not isinstance(s, dict):
            raise DialogueRulesError(f"{self.src}: {name}: expected a mapping")
        return s

    def rx(self, where: str, pattern: Any, wrap: str = "{}") -> re.Pattern[str]:
        if not isinstance(pattern, str) or not pattern:
            raise DialogueRulesError(f"{self.src}: {where}: expected a regex string")
        try:
            return re.compile(wrap.format(pattern))
        except re.error as e:
            raise DialogueRulesError(f"{self.src}: {where}: bad regex ({e}): {pattern!r}") from e

    def opt(self, sec: dict, key: str, where: str) -> re.Pattern[str] | None:
        return self.rx(where, sec[key]) if sec.get(key) else None

    def rewrites(self, user: dict) -> tuple[Rewrite, ...]:
        """How a request is read as a commitment ("could you X" -> "i'll X")."""
        out = []
        for i, r in enumerate(user.get("requests") or []):
            where = f"user.requests.{i}"
            if not isinstance(r, dict) or not isinstance(r.get("say"), str) or "as" not in r:
                raise DialogueRulesError(f"{self.src}: {where}: expected {{say: regex, as: text}}")
            compiled = self.rx(f"{where}.say", r["say"], "^(?:{})")
            if "rest" not in compiled.groupindex and "{rest}" in str(r["as"]):
                raise DialogueRulesError(
                    f"{self.src}: {where}.say: 'as' uses {{rest}}; capture (?P<rest>...)"
                )
            out.append(Rewrite(compiled, str(r["as"])))
        return tuple(out)


def _persons(user: dict) -> tuple[dict[str, str], re.Pattern[str] | None]:
    """The user's persons swapped to the creature's ("me" -> "you"), and one regex of them."""
    persons = {str(k).lower(): str(v) for k, v in (user.get("persons") or {}).items()}
    if not persons:
        return persons, None
    words = "|".join(map(re.escape, persons))
    return persons, re.compile(r"(?<![a-z0-9'])(?:" + words + r")(?![a-z0-9'])")


def _creature_rules(r: _Reader, creature: dict) -> dict[str, re.Pattern[str]]:
    """How the creature answers a request: refuses, defers, asks, accepts, commits by pronoun."""
    keys = ("refusals", "deferrals", "clarifications", "acceptances", "pronoun_commitments")
    return {k: r.rx(f"creature.{k}", creature.get(k)) for k in (*keys, "backchannels")}


def load_dialogue_rules(intents: IntentRules, path: str | Path | None = None) -> DialogueRules:
    """Read and compile a dialogue file (default configs/dialogue.yaml); every error names the
    file and the key."""
    p = Path(path) if path else DIALOGUE_FILE
    r = _Reader(read_yaml_mapping(p, "dialogue", DialogueRulesError), str(p))
    user, creature = r.section("user"), r.section("creature")
    requests = r.rewrites(user)
    persons, persons_rx = _persons(user)
    return DialogueRules(
        intents=intents,
        interjections=r.rx("user.interjections", user.get("interjections"), "^(?:(?:{})[,.!]? )+"),
        courtesies=r.opt(user, "courtesies", "user.courtesies"),
        requests=requests,
        persons=persons,
        persons_rx=persons_rx,
        stop=r.rx("user.stop", user.get("stop")),
        not_stop=r.opt(user, "not_stop", "user.not_stop"),
        declines=r.opt(user, "declines", "user.declines"),
        **_creature_rules(r, creature),
        continuations=r.rx("continuations", r.raw.get("continuations")),
        source=r.src,
    )


# -- the creature's side ---------------------------------------------------------------------


def _follow_ons(text: str, end: int, rules: DialogueRules, complete: bool) -> list[Match]:
    """The calls chained after a match that ends at ``end`` of normalized ``text``: "... and
    bring it to you" read as its own commitment ("i'll bring it to you")."""
    out: list[Match] = []
    rest = text[end:]
    while rest:
        found = None
        for c in _continuation_starts(rest, rules):
            part = rest[c:]
            for prefix in (COMMIT, PROGRESSIVE):  # "and bring it", "and bringing it"
                j = judge(prefix + part, rules.intents, complete)
                if j.match is not None and j.match.span[0] == len(prefix):
                    found = (j.match, j.text[j.match.span[1] :])
                    break
            if found is not None:
                break
        if found is None:
            break
        out.append(found[0])
        rest = found[1]
    return out


def _continuation_starts(rest: str, rules: DialogueRules) -> list[int]:
    """Where a chained clause may start in ``rest``: after a conjunction, within the sentence."""
    stop = re.search(r"[.!?;]", rest)
    scope = rest[: stop.start()] if stop else rest
    starts = []
    for m in re.finditer(r"(?:^|[ ,])", scope):
        c = rules.continuations.match(scope, m.start())
        if c and c.end() > m.start():
            starts.append(c.end())
    return sorted(set(starts))


def commitments_in(verdict: Judgement, rules: DialogueRules, complete: bool = True) -> list[Match]:
    """Every action a judged sentence commits to, in order (its match and the chained ones)."""
    if verdict.match is None:
        return []
    return [verdict.match, *_follow_ons(verdict.text, verdict.match.span[1], rules, complete)]


def classify_reply(verdict: Judgement, rules: DialogueRules) -> Reply:
    """What the creature's sentence says to a request (its own commitment wins)."""
    text = verdict.text
    if verdict.match is not None:
        obj = verdict.match.slots.get("object")
        return Reply.PRONOUN if obj == rules.intents.pronoun_value else Reply.COMMITMENT
    if rules.refusals.search(text):
        return Reply.REFUSAL
    if rules.deferrals.search(text) or verdict.rule is not None and verdict.rule.value == "hedge":
        return Reply.DEFERRAL
    if rules.clarifications.search(text):
        return Reply.CLARIFICATION
    if rules.backchannels.match(text):
        return Reply.BACKCHANNEL
    if rules.pronoun_commitments.search(text):
        return Reply.PRONOUN
    if rules.acceptances.search(text):
        return Reply.ACCEPTANCE
    return Reply.NONE


# -- the user's side ---------------------------------------------------------------------------


def swap_persons(text: str, rules: DialogueRules) -> str:
    if rules.persons_rx is None:
        return text
    return rules.persons_rx.sub(lambda m: rules.persons[m.group(0)], text)


def read_as_creature(sentence: str, rules: DialogueRules) -> str | None:
    """A user's sentence as the creature would commit to it, or None when it asks for
    nothing (a statement, a question about something else)."""
    text = normalize(sentence, rules.intents.text).rstrip(" ?.!")
    if rules.courtesies is not None:
        text = rules.courtesies.sub("", text).strip(" ,")
    text = rules.interjections.sub("", text + " ").strip()
    if not text:
        return None
    for rw in rules.requests:
        m = rw.rx.match(text)
        if m is not None:
            rest = swap_persons(m.groupdict().get("rest") or "", rules).strip()
            return rw.template.replace("{rest}", rest) + "."
    if rules.intents.heads.match(text):  # an imperative: "pick up the cup"
        return COMMIT + swap_persons(text, rules) + "."
    return None


def read_request(text: str, rules: DialogueRules, complete: bool = True) -> Request | None:
    """The last sentence of ``text`` that asks for an action, with every action it asks for."""
    found = None
    for s in SENTENCES.findall(text):
        said = read_as_creature(s, rules)
        if said is None:
            continue
        j = judge(said, rules.intents, complete)
        matches = commitments_in(j, rules, complete)
        if matches:
            found = Request(s.strip(), said, tuple(replace(m, phrase=s.strip()) for m in matches))
    return found


def is_stop(words: str, rules: DialogueRules) -> bool:
    """Do the user's words so far end in a stop ("stop", "wait, don't")?"""
    text = " ".join(words.lower().replace("\u2019", "'").split())
    if not rules.stop.search(text):
        return False
    return not (rules.not_stop is not None and rules.not_stop.search(text))


def is_decline(text: str, rules: DialogueRules) -> bool:
    t = rules.interjections.sub("", normalize(text, rules.intents.text) + " ").strip()
    return bool(rules.declines is not None and rules.declines.match(t or text.lower()))
