"""A report on a call, apart from what it changes: who may make it (the body it was sent to,
on its current connection; over HTTP, only for a call the webhook was given) and the typed
events it becomes. The dispatcher applies the reports; these rules hold no state."""

from __future__ import annotations

from typing import Any

from orchestrator.brain.calls import CallStatus, StatusErrorCode
from orchestrator.brain.events import StatusRefused, ToolProgress, ToolStatusChanged
from orchestrator.brain.outbox import OutboxCall
from orchestrator.brain.robot_protocol import clip


def sender_refusal(call: OutboxCall, link: Any, connected: list[Any]) -> str | None:
    """Why ``link`` (None: over HTTP) may not report on ``call``; None when it may."""
    if link is not None:
        if call.robot != link.name or link not in connected:
            return f"call {clip(call.id)} was not sent to this connection"
        return None
    if call.webhook is None or call.webhook == "failed":
        return f"call {clip(call.id)} was never delivered to the webhook"
    return None


def refused(call: OutboxCall, status: CallStatus, source: str, code: StatusErrorCode):
    return StatusRefused(
        id=call.id,
        status=status.value,
        current=call.status.value,
        code=code.value,
        source=source,
    )


def changed(call: OutboxCall, status: CallStatus, reason: str | None, source: str):
    return ToolStatusChanged(
        id=call.id,
        status=status,
        reason=reason,
        action=call.args.get("action"),
        source=source,
    )


def progressed(call: OutboxCall, progress: float | None, text: str | None, source: str):
    return ToolProgress(
        id=call.id,
        action=call.args.get("action"),
        progress=progress,
        text=text,
        source=source,
    )
