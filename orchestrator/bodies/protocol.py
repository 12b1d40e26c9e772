"""The robot channel's wire, as both ends share it and as a robot speaks it (docs/bodies.md,
docs/slow_loop.md "Robot channel protocol").

JSON text frames both ways. A robot sends ``hello`` (optional, first: its body and what it can
do), ``status`` (a call's progress and outcome) and ``ping``; the creature sends ``welcome``,
``ready`` (the answer to a hello), ``tool_call``, ``cancel``, ``error`` and ``pong``.

This module holds what both ends need (the message types, the error codes, the statuses a robot
reports) and the robot's side: the builders of what a robot sends and
:func:`parse_from_creature`, which turns the creature's frames into typed messages. The
creature's side (its parse of a robot's messages, its builders) is
``orchestrator.brain.robot_protocol``, which imports the shared part from here. It lives among
the bodies because a body program runs in an environment of its own and imports nothing of the
creature but ``orchestrator.bodies``; pure data, standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

PROTOCOL_VERSION = 1
TOOL_NAME = "do_physical_task"
MAX_QUOTE_CHARS = 64  # an id or name quoted in an error reply


def clip(text: str, n: int = MAX_QUOTE_CHARS) -> str:
    """An id or value to quote in a reply, never longer than ``n`` (plus its length)."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} chars)"


class MsgType(str, Enum):
    # robot -> creature
    HELLO = "hello"
    STATUS = "status"
    PING = "ping"
    # creature -> robot
    WELCOME = "welcome"
    READY = "ready"
    TOOL_CALL = "tool_call"
    CANCEL = "cancel"
    ERROR = "error"
    PONG = "pong"


class ErrorCode(str, Enum):
    """The ``code`` of an error reply that is about the message itself (a status the creature
    cannot take has its own codes: ``orchestrator.brain.calls.StatusErrorCode``)."""

    BAD_JSON = "bad_json"
    TOO_DEEP = "too_deep"
    BINARY = "binary"  # a binary frame: the protocol is JSON text
    BAD_MESSAGE = "bad_message"  # an unknown type, a missing or mistyped field
    BAD_ID = "bad_id"
    BAD_HELLO = "bad_hello"  # a hello the creature cannot take (docs/bodies.md)
    UNAUTHORIZED = "unauthorized"
    ROBOT_IN_USE = "robot_in_use"


class ProtocolError(ValueError):
    """A frame that does not follow the protocol; ``code`` says which kind, ``id`` is the call
    it was about (clipped), when known."""

    def __init__(self, code: ErrorCode | str, message: str, call_id: str | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode(code) if not isinstance(code, ErrorCode) else code
        self.id = call_id


class Status(str, Enum):
    """What a robot reports of a call (``status``); the last three end it."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


# -- robot -> creature: builders (the wire form) ----------------------------------------------


@dataclass(frozen=True)
class Capability:
    """One action a body declares it can do and, per slot, the values it takes (a value None,
    or a slot not named: any value). ``slots`` None leaves the key out of the hello."""

    action: str
    slots: Mapping[str, Sequence[str] | None] | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.slots is not None:
            out["slots"] = {k: None if v is None else list(v) for k, v in self.slots.items()}
        return out


def hello(body: str | None, capabilities: Iterable[Capability] | None = None) -> dict[str, Any]:
    """What a body declares when it connects: its kind and what it can do (None: everything)."""
    out: dict[str, Any] = {"type": "hello"}
    if body:
        out["body"] = body
    if capabilities is not None:
        out["capabilities"] = [c.wire() for c in capabilities]
    return out


def status(
    call_id: str,
    value: Status | str,
    reason: str | None = None,
    progress: float | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A call's progress or outcome; an empty reason or text is left out."""
    out: dict[str, Any] = {
        "type": "status",
        "id": call_id,
        "status": getattr(value, "value", value),
    }
    if reason:
        out["reason"] = reason
    if progress is not None:
        out["progress"] = progress
    if text:
        out["text"] = text
    return out


def ping() -> dict[str, Any]:
    return {"type": "ping"}


# -- creature -> robot: what a robot reads ----------------------------------------------------


@dataclass(slots=True, frozen=True)
class WelcomeMsg:
    protocol: int
    tools: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class ReadyMsg:
    robot: str
    body: str | None
    actions: tuple[str, ...] | None


@dataclass(slots=True, frozen=True)
class ToolCallMsg:
    id: str
    arguments: dict[str, Any]
    attempt: int

    @property
    def action(self) -> str:
        return str(self.arguments.get("action") or "")


@dataclass(slots=True, frozen=True)
class CancelMsg:
    id: str
    reason: str | None


@dataclass(slots=True, frozen=True)
class ErrorMsg:
    code: str | None
    error: str
    id: str | None


@dataclass(slots=True, frozen=True)
class PongMsg:
    pass


CreatureMsg = WelcomeMsg | ReadyMsg | ToolCallMsg | CancelMsg | ErrorMsg | PongMsg


def _creature_msg(kind: Any, d: dict[str, Any]) -> CreatureMsg | None:
    if kind == "tool_call":
        return ToolCallMsg(str(d["id"]), dict(d.get("arguments") or {}), int(d.get("attempt", 1)))
    if kind == "cancel":
        return CancelMsg(str(d["id"]), d.get("reason"))
    if kind == "welcome":
        return WelcomeMsg(int(d.get("protocol", 0)), tuple(d.get("tools") or ()))
    if kind == "ready":
        actions = d.get("actions")
        return ReadyMsg(
            str(d.get("robot", "")), d.get("body"), None if actions is None else tuple(actions)
        )
    if kind == "error":
        return ErrorMsg(d.get("code"), str(d.get("error", "")), d.get("id"))
    if kind == "pong":
        return PongMsg()
    return None


def parse_from_creature(text: str | bytes) -> CreatureMsg:
    """A frame from the creature -> a typed message (a robot's side of the channel)."""
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(ErrorCode.BAD_JSON, f"not JSON: {e}") from None
    if not isinstance(d, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "a message must be a JSON object")
    kind = d.get("type")
    try:
        msg = _creature_msg(kind, d)
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{kind}: {e}") from None
    if msg is None:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type {clip(repr(kind), 40)}")
    return msg
