"""How the planner's answer is read (:mod:`orchestrator.brain.planner` builds what it is
shown). The answer is untrusted input: every proposal goes through the same rules as a rules
call (the schema, the pronoun rule, the objects the dialogue named, the action's required
slots), and anything malformed is a :class:`Verdict`, never an exception."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orchestrator.brain.planner import PRONOUNS, normalise_object
from orchestrator.brain.tool_schema import TOOL_NAME, ToolSchema


class Verdict(str, Enum):
    """What a planner request came to (``creature_planner_requests_total{verdict}``)."""

    CALLS = "calls"  # at least one proposal passed the checks
    NONE = "none"  # it proposed nothing (or nothing that passed)
    MALFORMED = "malformed"  # not a chat-completions answer
    ERROR = "error"  # the endpoint failed or could not be reached
    TIMEOUT = "timeout"  # no answer within timeout_s
    SUPERSEDED = "superseded"  # a newer dialogue state replaced the question


@dataclass(slots=True)
class Proposal:
    action: str
    slots: dict[str, str | None]


@dataclass(slots=True)
class Refused:
    """A proposal that did not pass: what it said (clipped) and why."""

    said: str
    reason: str


@dataclass(slots=True)
class PlannerAnswer:
    verdict: Verdict
    proposals: list[Proposal] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    detail: str = ""


def _clip(text: str, n: int = 120) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _tool_calls(body: Any) -> list[Any] | None:
    """The answer's tool calls ([] for a plain reply), or None when it is not a
    chat-completions answer at all."""
    if not isinstance(body, dict):
        return None
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        return None
    if not calls and isinstance(message.get("function_call"), dict):  # the older form
        calls = [{"function": message["function_call"]}]
    return calls


def check_proposal(
    raw: Any, schema: ToolSchema, allowed: tuple[str, ...], objects: list[str] | None
) -> Proposal | Refused:
    """One tool call from the planner, through the same rules as a rules call."""
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or fn.get("name") != TOOL_NAME:
        name = fn.get("name") if isinstance(fn, dict) else None
        return Refused(_clip(json.dumps(raw, default=str)), f"unknown tool {name!r}")
    args = fn.get("arguments")
    said = _clip(args if isinstance(args, str) else json.dumps(args, default=str))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            return Refused(said, "arguments are not JSON")
    if not isinstance(args, dict):
        return Refused(said, "arguments are not an object")
    action = args.get("action")
    act = schema.actions.get(action) if isinstance(action, str) else None
    if act is None:
        return Refused(said, f"unknown action {action!r}")
    if action not in allowed:
        return Refused(said, f"action {action!r} is not allowed now")
    extra = set(args) - {"action", *schema.slots}
    if extra:
        return Refused(said, f"unknown field(s) {sorted(extra)}")
    slots: dict[str, str | None] = {}
    for name in schema.slots:
        value = args.get(name)
        if value is not None and not isinstance(value, str):
            return Refused(said, f"{name}: expected a string or null")
        slots[name] = value if name in act.slots else None
    for name in act.requires:
        if not slots.get(name):
            return Refused(said, f"{action} needs {name}")
    obj = normalise_object(slots.get("object"))
    if obj is not None:
        if obj in PRONOUNS or obj.split()[-1] in PRONOUNS:
            return Refused(said, f"object {obj!r} is a pronoun: a body cannot act on it")
        if objects is not None and obj not in objects:
            return Refused(said, f"object {obj!r} was not named in the dialogue")
        slots["object"] = obj
    try:
        schema.validate({**_FILLER, "action": action, **slots})
    except ValueError as e:
        return Refused(said, str(e))
    return Proposal(action, slots)


# what the creature fills in itself, so that a proposal can be checked against the full schema
_FILLER = {"id": "call_" + "0" * 16, "utterance": "planner", "confidence": 1.0, "created": 0.0}


def read_answer(
    body: Any, schema: ToolSchema, allowed: tuple[str, ...], objects: list[str] | None
) -> PlannerAnswer:
    """A chat-completions answer -> proposals that passed and those that did not."""
    calls = _tool_calls(body)
    if calls is None:
        return PlannerAnswer(Verdict.MALFORMED, detail="not a chat-completions answer")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    answer = PlannerAnswer(
        Verdict.NONE,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
    )
    for raw in calls[:8]:
        checked = check_proposal(raw, schema, allowed, objects)
        if isinstance(checked, Proposal):
            answer.proposals.append(checked)
        else:
            answer.refused.append(checked)
    if len(calls) > 8:
        answer.refused.append(Refused(f"{len(calls) - 8} more", "at most 8 calls an answer"))
    if answer.proposals:
        answer.verdict = Verdict.CALLS
    return answer


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def same_call(action: str, obj: str | None, proposal: Proposal) -> bool:
    return proposal.action == action and normalise_object(
        proposal.slots.get("object")
    ) == normalise_object(obj)
