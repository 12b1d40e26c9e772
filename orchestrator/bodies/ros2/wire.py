"""The robot side of the creature's robot WebSocket protocol, as this body speaks it.

docs/slow_loop.md describes the messages. The one thing a body adds to what the example robot
sends is its **hello**: the body's name and what it can do (``capabilities``: one entry per
action with the slots it takes), sent on connect and again when it changes. Its shape lives in
:func:`hello` alone, so a change of the handshake is a change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Status(str, Enum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
MAX_TEXT = 200  # a running message's text: a short line, clipped


@dataclass(frozen=True)
class Capability:
    action: str
    slots: tuple[str, ...]


def hello(body: str, capabilities: list[Capability]) -> str:
    """The handshake: who this body is and which actions (with which slots) it can do now."""
    return json.dumps(
        {
            "type": "hello",
            "body": body,
            # a slot not named takes any value (docs/bodies.md): a goal's fields take what the
            # call says, so no slot is narrowed here
            "capabilities": [{"action": c.action} for c in capabilities],
        }
    )


def status(
    call_id: str,
    st: Status,
    reason: str | None = None,
    progress: float | None = None,
    text: str | None = None,
) -> str:
    msg: dict[str, Any] = {"type": "status", "id": call_id, "status": st.value}
    if reason:
        msg["reason"] = reason[:MAX_TEXT]
    if progress is not None:
        msg["progress"] = round(min(1.0, max(0.0, progress)), 3)
    if text:
        msg["text"] = text[:MAX_TEXT]
    return json.dumps(msg)


@dataclass(frozen=True)
class ToolCall:
    id: str
    arguments: dict[str, Any]

    @property
    def action(self) -> str:
        return str(self.arguments.get("action") or "")


@dataclass(frozen=True)
class Cancel:
    id: str
    reason: str


@dataclass(frozen=True)
class Other:
    """welcome, error, pong: logged, nothing to do."""

    kind: str
    text: str


def parse(raw: str | bytes) -> ToolCall | Cancel | Other:
    try:
        msg = json.loads(raw)
    except ValueError as e:
        return Other("bad_json", str(e))
    if not isinstance(msg, dict):
        return Other("bad_json", "not a JSON object")
    kind = msg.get("type")
    if kind == "tool_call" and isinstance(msg.get("id"), str):
        args = msg.get("arguments")
        return ToolCall(msg["id"], args if isinstance(args, dict) else {})
    if kind == "cancel" and isinstance(msg.get("id"), str):
        return Cancel(msg["id"], str(msg.get("reason") or ""))
    return Other(str(kind), str(msg.get("error") or msg.get("protocol") or ""))
