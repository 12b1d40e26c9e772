"""The ``do_physical_task`` tool: its JSON Schema, building a call from an intent, and the
safety gate every call passes before anything can move (allowlist, confidence, rate limit)."""

from __future__ import annotations

import time
import uuid
from collections import deque
from functools import lru_cache
from typing import Any

import jsonschema

from orchestrator.brain.intents import Intent
from orchestrator.brain.tool_schema import TOOL_NAME, parameters_schema, tool_definition
from orchestrator.slow_config import SafetyConfig

__all__ = ["TOOL_NAME", "SafetyGate", "call_from_intent", "tool_definition", "validate_call"]


class ToolCallError(ValueError):
    """A call that does not match the schema (names the field and what was wrong)."""


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = parameters_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_call(args: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(_validator().iter_errors(args), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.path) or "(arguments)"
        raise ToolCallError(f"{TOOL_NAME}: {where}: {e.message}")
    return args


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def call_from_intent(intent: Intent, created: float | None = None) -> dict[str, Any]:
    """The tool arguments for an intent, validated against the schema."""
    args = {
        "id": new_call_id(),
        "action": intent.action,
        "object": intent.slots.get("object"),
        "destination": intent.slots.get("destination"),
        "recipient": intent.slots.get("recipient"),
        "utterance": intent.phrase[:500] or intent.action,
        "confidence": float(intent.confidence),
        "created": time.time() if created is None else created,
    }
    return validate_call(args)


class SafetyGate:
    """Decides whether a call may go to a robot. Returns None when allowed, else why not."""

    def __init__(self, cfg: SafetyConfig, clock=time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._sent: deque[float] = deque()

    def check(self, args: dict[str, Any]) -> str | None:
        action = args.get("action")
        if action not in self.cfg.allowed_actions:
            return f"action {action!r} is not in slow_loop.safety.allowed_actions"
        if float(args.get("confidence", 0.0)) < self.cfg.min_confidence:
            return (
                f"confidence {args.get('confidence')} is below "
                f"slow_loop.safety.min_confidence ({self.cfg.min_confidence})"
            )
        if action == "stop":
            return None  # stopping is always allowed and never rate limited
        now = self._clock()
        while self._sent and now - self._sent[0] > self.cfg.rate_limit_window_s:
            self._sent.popleft()
        if len(self._sent) >= self.cfg.rate_limit_calls:
            return (
                f"rate limit: {self.cfg.rate_limit_calls} calls per "
                f"{self.cfg.rate_limit_window_s}s (slow_loop.safety)"
            )
        self._sent.append(now)
        return None
