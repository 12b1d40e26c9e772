"""The ``do_physical_task`` tool: building a call from an intent, and the safety gate every
call passes before anything can move (allowlist, confidence, rate limit). The schema itself is
generated from the action declarations (:mod:`orchestrator.brain.tool_schema`)."""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import Any

from orchestrator.brain.actions import ActionSet, load_actions
from orchestrator.brain.intents import Intent
from orchestrator.brain.tool_schema import (
    TOOL_NAME,
    ToolCallError,
    ToolSchema,
    tool_definition,
    tool_schema,
)
from orchestrator.slow_config import SafetyConfig

__all__ = [
    "TOOL_NAME",
    "SafetyGate",
    "ToolCallError",
    "call_from_intent",
    "tool_definition",
    "validate_call",
]


def validate_call(args: dict[str, Any], schema: ToolSchema | None = None) -> dict[str, Any]:
    return (schema or tool_schema()).validate(args)


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def call_from_intent(
    intent: Intent, created: float | None = None, schema: ToolSchema | None = None
) -> dict[str, Any]:
    """The tool arguments for an intent, validated against the schema: every declared slot is
    present, null where the intent's action does not use it."""
    schema = schema or tool_schema()
    args: dict[str, Any] = {"id": new_call_id(), "action": intent.action}
    for slot in schema.slots:
        args[slot] = intent.slots.get(slot)
    args.update(
        utterance=intent.phrase[:500] or intent.action,
        confidence=float(intent.confidence),
        created=time.time() if created is None else created,
    )
    return schema.validate(args)


class SafetyGate:
    """Decides whether a call may go to a robot. Returns None when allowed, else why not."""

    def __init__(self, cfg: SafetyConfig, clock=time.monotonic, actions: ActionSet | None = None):
        self.cfg = cfg
        self.actions = actions or load_actions()
        self.allowed = cfg.allowed(self.actions.names)
        self._clock = clock
        self._sent: deque[float] = deque()

    def check(self, args: dict[str, Any]) -> str | None:
        action = args.get("action")
        if action not in self.allowed:
            return f"action {action!r} is not in slow_loop.safety.allowed_actions"
        if float(args.get("confidence", 0.0)) < self.cfg.min_confidence:
            return (
                f"confidence {args.get('confidence')} is below "
                f"slow_loop.safety.min_confidence ({self.cfg.min_confidence})"
            )
        if self.actions.cancels_all(str(action)):
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
