"""What the dialogue (:mod:`orchestrator.brain.dialogue`) decides, for the brain to act on: a
:class:`Plan` of calls, an :class:`Unsent` commitment and why, the user's :class:`Stop`, a
:class:`RequestHeard`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from orchestrator.brain.dialogue_rules import Reply, Request
from orchestrator.brain.intents import Intent


class Binding(str, Enum):
    """How a plan's calls came about (``creature intent --explain`` and the record name it)."""

    CREATURE = "creature_commitment"  # the creature's own full commitment, nothing resolved
    ACCEPTED = "request_accepted"  # an acceptance turned the user's request into its calls
    PRONOUN = "pronoun_to_request"  # "I'll get it": the request's objects and slots
    MEMORY = "pronoun_to_last_named"  # "it" is the last object either side named


@dataclass
class Plan:
    """Calls to make, in order: the first now, each next when the one before succeeds."""

    binding: Binding
    intents: list[Intent]
    creature: str
    reply: Reply
    user: str | None = None
    waited_s: float = 0.0  # held for the user's words this long before binding

    def to_dict(self) -> dict[str, Any]:
        return {
            "binding": self.binding.value,
            "reply": self.reply.value,
            "creature": self.creature,
            "user": self.user,
            "calls": [i.id for i in self.intents],
        }


@dataclass
class Unsent:
    """A commitment that makes no call, and why (a pronoun with nothing to refer to, a
    refusal of the request, a request nobody accepted)."""

    reason: str
    creature: str | None = None
    user: str | None = None
    action: str | None = None


@dataclass
class Stop:
    """The user said stop: cancel every open call now."""

    words: str
    final: bool


@dataclass
class RequestHeard:
    request: Request


Decision = Plan | Unsent | Stop | RequestHeard
