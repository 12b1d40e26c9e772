"""The planner's half that needs no network: what it is shown (and, in
:mod:`orchestrator.brain.planner_answer`, how its answer is read).

An optional LLM beside the rules (``slow_loop.planner``, docs/planner.md). It is shown a window
of the dialogue (both sides, timed), the open calls and their statuses, the call the rules are
holding for its agreement (``confirm``) and the ``do_physical_task`` tool narrowed to what may be
asked now: the allowed actions, and (``ground_objects``) the objects the dialogue named. It
answers with tool calls or none.

Its answer is untrusted input: every proposal goes through the same rules as a rules call
(schema, the pronoun rule, the objects the dialogue named, the action's required slots; then
the dispatcher's safety gate and rate limit), and anything malformed is a verdict, never an
exception. The HTTP side lives in ``orchestrator.runtime.planner_client``; the brain applies the
policy (``orchestrator.brain.planning``).
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from orchestrator.brain.tool_schema import TOOL_NAME, ToolSchema
from orchestrator.slow_config import PlannerConfig

Speaker = Literal["user", "creature"]
# words that point at a thing without naming it: never sent to a body (the dialogue's rule)
PRONOUNS = frozenset({"it", "that", "them", "this", "those", "these", "one", "something"})
# a named thing: after a determiner, up to three words ("the red cup", "my coffee mug")
_NAMED = re.compile(
    r"\b(?:the|a|an|my|your|our|his|her|their|this|that|these|those)\s+"
    r"((?:[a-z][a-z'-]*\s+){0,2}[a-z][a-z'-]*)"
)
# time and manner words that follow a determiner without naming a thing ("in a sec")
_NOT_OBJECTS = frozenset(
    {
        "way",
        "moment",
        "sec",
        "second",
        "minute",
        "time",
        "end",
        "thing",
        "one",
        "lot",
        "bit",
        "same",
        "other",
        "rest",
        "right",
        "left",
    }
)
_STOP_WORDS = frozenset(
    {
        "and",
        "or",
        "to",
        "for",
        "from",
        "on",
        "in",
        "into",
        "onto",
        "off",
        "up",
        "down",
        "with",
        "please",
        "now",
        "then",
        "there",
        "here",
        "over",
        "back",
        "again",
        "me",
        "you",
        "it",
        "is",
        "are",
        "was",
        "be",
        "of",
        "at",
        "by",
        "so",
        "too",
        "right",
        "away",
        "sure",
    }
)
SYSTEM_PROMPT = (
    "You watch a spoken conversation between a user and an embodied creature that has a robot "
    "body. Call do_physical_task once for each physical task the creature has agreed to do or "
    "has promised in its own words, and that is not already among the open calls. Do not call "
    "it for something the creature refused, questioned or put off, or for the user's words "
    "alone. Name objects as the dialogue names them, never with a pronoun. If no task is "
    "agreed, answer without calling the tool."
)


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: Speaker
    text: str
    t: float  # when it ended, on the brain's clock


class DialogueWindow:
    """Both sides of the conversation, newest last: the user's words gathered into turns (a
    turn ends when the creature speaks or after ``gap_s`` of silence), the creature's sentences
    as the intent watcher judged them. Bounded: ``max_turns`` kept."""

    def __init__(self, max_turns: int = 200, gap_s: float = 1.5) -> None:
        self.turns: deque[Turn] = deque(maxlen=max_turns)
        self.gap_s = gap_s
        self.version = 0  # bumped on every change: a planner answer to an older one is stale

    def add(self, speaker: Speaker, text: str, t: float) -> None:
        text = " ".join(text.split())
        if not text:
            return
        last = self.turns[-1] if self.turns else None
        if (
            speaker == "user"
            and last is not None
            and last.speaker == "user"
            and (t - last.t <= self.gap_s)
        ):
            self.turns[-1] = Turn("user", f"{last.text} {text}", t)
        else:
            self.turns.append(Turn(speaker, text, t))
        self.version += 1

    def recent(self, now: float, window_s: float, max_turns: int) -> list[Turn]:
        return [turn for turn in self.turns if now - turn.t <= window_s][-max_turns:]


def named_objects(turns: list[Turn]) -> list[str]:
    """The things the dialogue named, newest first, each once ("red cup", "towel"): a noun
    phrase after a determiner, less trailing function words; places and time words are not
    things to carry."""
    seen: dict[str, None] = {}
    for turn in reversed(turns):
        for m in _NAMED.finditer(turn.text.lower()):
            words = m.group(1).split()
            while words and words[-1] in _STOP_WORDS:
                words.pop()
            if words and words[0] in _STOP_WORDS:
                words = []
            if not words or words[-1] in _NOT_OBJECTS or words[-1] in PRONOUNS:
                continue
            seen.setdefault(" ".join(words), None)
    return list(seen)


def normalise_object(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    words = value.lower().strip(" .,!?").split()
    while words and words[0] in {"the", "a", "an", "my", "your", "our", "this", "that"}:
        words.pop(0)
    return " ".join(words) or None


@dataclass(frozen=True, slots=True)
class OpenCall:
    id: str
    action: str
    object: str | None
    status: str


@dataclass(slots=True)
class PlannerRequest:
    """One question to the planner, with what its answer will be checked against."""

    id: int
    trigger: str  # what asked: "creature_sentence", "confirm", ...
    version: int  # the dialogue's version it saw
    body: dict[str, Any]
    objects: list[str]  # what the dialogue named (the grounding rule's list)
    allowed: tuple[str, ...]  # actions it may propose
    held: list[str] = field(default_factory=list)  # intent ids waiting for it (confirm)


def planner_tool(schema: ToolSchema, allowed: tuple[str, ...], objects: list[str] | None) -> dict:
    """The tool the planner sees: the action and the slots only (the creature fills in the id,
    utterance, confidence and time), narrowed to ``allowed`` actions and, given ``objects``,
    to the objects the dialogue named (an endpoint that constrains its output to the schema
    then cannot name another)."""
    props = schema.parameters["properties"]
    acts = [schema.actions.get(a) for a in allowed]
    described = "; ".join(
        f"{a.name} ({', '.join(a.slots) or 'no slots'}): {a.description}" for a in acts
    )
    out: dict[str, Any] = {
        "action": {"type": "string", "enum": list(allowed), "description": described}
    }
    for slot in schema.slots:
        prop = props[slot]
        text: dict[str, Any] = {"type": "string", "maxLength": prop.get("maxLength", 80)}
        values = [v for v in prop.get("enum", []) if v is not None]
        if slot == "object" and objects is not None:
            values = objects
        if values or (slot == "object" and objects is not None):
            text["enum"] = values
        used = any(slot in a.slots for a in acts)
        needed = used and all(slot in a.requires for a in acts)
        # nullable as anyOf, not a type list: grammar-constrained servers (llama.cpp) honour an
        # enum inside it. A slot no allowed action uses is null; one every allowed action needs
        # is never null (a proposal without it would only be refused).
        if not used or text.get("enum") == []:
            choices = [{"type": "null"}]
        elif needed:
            choices = [text]
        else:
            choices = [text, {"type": "null"}]
        out[slot] = {"description": prop["description"], "anyOf": choices}
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Ask the creature's robot body to carry out one physical task the "
            "creature agreed to in this conversation.",
            "parameters": {
                "type": "object",
                "properties": out,
                "required": ["action", *schema.slots],
                "additionalProperties": False,
            },
        },
    }


def dialogue_text(turns: list[Turn], now: float) -> str:
    return "\n".join(f"[{turn.t - now:+.1f}s] {turn.speaker}: {turn.text}" for turn in turns)


def build_request(
    cfg: PlannerConfig,
    schema: ToolSchema,
    allowed: tuple[str, ...],
    turns: list[Turn],
    now: float,
    open_calls: list[OpenCall],
    held: list[dict[str, Any]],
    bodies: str = "",
) -> tuple[dict[str, Any], list[str]]:
    """The chat-completions body and the objects it was grounded on."""
    objects = named_objects(turns)
    lines = ["Dialogue (seconds before now):", dialogue_text(turns, now) or "(nothing yet)"]
    lines.append(
        "Open calls: " + (json.dumps([asdict(c) for c in open_calls]) if open_calls else "none")
    )
    if bodies:
        lines.append(f"Connected bodies and what they can do: {bodies}")
    if held:
        lines.append(
            "The creature's rules propose these calls and wait for your agreement: "
            + json.dumps(held)
            + ". Call the tool for each one you agree with; leave out any you do not."
        )
    body = {
        "model": cfg.model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(lines)},
        ],
        "tools": [planner_tool(schema, allowed, objects if cfg.ground_objects else None)],
        "tool_choice": "auto"
        if cfg.tool_choice == "auto"
        else {"type": "function", "function": {"name": TOOL_NAME}},
        "max_tokens": cfg.max_tokens,
        "temperature": cfg.temperature,
        "stream": False,
    }
    return body, objects
