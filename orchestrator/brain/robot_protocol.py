"""The robot channel's messages as the creature reads and writes them (docs/bodies.md,
docs/slow_loop.md "Robot channel protocol").

What both ends share (the message types, the error codes, :class:`ProtocolError`) and the
robot's side (its builders, its parse of what the creature sends) live in
``orchestrator.bodies.protocol``, which a body program can import in its own environment; this
module adds the creature's side. ``parse_from_robot`` turns a decoded frame into a message or
raises :class:`ProtocolError` (its ``code`` goes into the error reply). The builders return the
wire form (the JSON object), so every ``{"type": "error", ...}`` is written by :func:`error`
alone. Pure data: nothing here reads a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.bodies.protocol import (
    PROTOCOL_VERSION,
    TOOL_NAME,
    ErrorCode,
    MsgType,
    ProtocolError,
    clip,
)

__all__ = [
    "PROTOCOL_VERSION",
    "TOOL_NAME",
    "Capability",
    "ErrorCode",
    "HelloMsg",
    "MsgType",
    "PingMsg",
    "ProtocolError",
    "RobotMsg",
    "StatusMsg",
    "cancel",
    "clip",
    "error",
    "parse_from_robot",
    "pong",
    "ready",
    "tool_call",
    "welcome",
]

MAX_STATUS_CHARS = 32
MAX_REASON_CHARS = 500
MAX_PROGRESS_TEXT_CHARS = 120
MAX_BODY_CHARS = 64
MAX_CAPABILITIES = 64
MAX_SLOT_VALUES = 64


# -- robot -> creature ------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Capability:
    """One action a body can do; ``slots``: for a slot it restricts, the values it accepts
    (a slot not named takes any value)."""

    action: str
    slots: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def accepts(self, slot: str, value: Any) -> bool:
        allowed = dict(self.slots).get(slot)
        return allowed is None or value is None or value in allowed

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.slots:
            out["slots"] = {k: list(v) for k, v in self.slots}
        return out


@dataclass(slots=True, frozen=True)
class HelloMsg:
    body: str | None
    capabilities: tuple[Capability, ...] | None  # None: declares nothing (can do everything)


@dataclass(slots=True, frozen=True)
class StatusMsg:
    id: str
    status: str
    reason: str | None = None
    progress: float | None = None  # 0..1, with ``running``
    text: str | None = None  # a short description of the progress


@dataclass(slots=True, frozen=True)
class PingMsg:
    pass


RobotMsg = HelloMsg | StatusMsg | PingMsg


def _opt_str(d: dict[str, Any], key: str, where: str, n: int) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where}: '{key}' must be a string")
    return clip(v, n)


def _capability(c: Any, i: int) -> Capability:
    where = f"hello: capabilities[{i}]"
    if not isinstance(c, dict) or not isinstance(c.get("action"), str):
        raise ProtocolError(ErrorCode.BAD_HELLO, f"{where} must be an object with an 'action'")
    slots = c.get("slots") or {}
    if not isinstance(slots, dict):
        raise ProtocolError(ErrorCode.BAD_HELLO, f"{where}.slots must be an object")
    out = []
    for name, values in slots.items():
        if values is None:
            continue
        if (
            not isinstance(values, list)
            or len(values) > MAX_SLOT_VALUES
            or not all(isinstance(v, str) for v in values)
        ):
            raise ProtocolError(
                ErrorCode.BAD_HELLO,
                f"{where}.slots.{clip(name)} must be a list of at most {MAX_SLOT_VALUES} strings",
            )
        out.append((name, tuple(values)))
    return Capability(c["action"], tuple(out))


def _hello(d: dict[str, Any]) -> HelloMsg:
    body = d.get("body")
    if body is not None and not isinstance(body, str):
        raise ProtocolError(ErrorCode.BAD_HELLO, "hello: 'body' must be a string")
    caps = d.get("capabilities")
    if caps is None:
        return HelloMsg(clip(body, MAX_BODY_CHARS) if body else None, None)
    if not isinstance(caps, list) or len(caps) > MAX_CAPABILITIES:
        raise ProtocolError(
            ErrorCode.BAD_HELLO,
            f"hello: 'capabilities' must be a list of at most {MAX_CAPABILITIES}",
        )
    return HelloMsg(
        clip(body, MAX_BODY_CHARS) if body else None,
        tuple(_capability(c, i) for i, c in enumerate(caps)),
    )


def _status(d: dict[str, Any], max_id_chars: int) -> StatusMsg:
    call_id, status = d.get("id"), d.get("status")
    if not isinstance(call_id, str) or not isinstance(status, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "status needs string 'id' and 'status'")
    if len(call_id) > max_id_chars:
        raise ProtocolError(ErrorCode.BAD_ID, f"id of {len(call_id)} chars; at most {max_id_chars}")
    progress = d.get("progress")
    if progress is not None:
        if isinstance(progress, bool) or not isinstance(progress, (int, float)):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "status: 'progress' must be a number", call_id
            )
        if not 0.0 <= progress <= 1.0:  # NaN fails this too
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "status: 'progress' must be from 0 to 1", call_id
            )
        progress = float(progress)
    reason = d.get("reason")
    return StatusMsg(
        id=call_id,
        status=clip(status, MAX_STATUS_CHARS),
        reason=None if reason is None else clip(str(reason), MAX_REASON_CHARS),
        progress=progress,
        text=_opt_str(d, "text", "status", MAX_PROGRESS_TEXT_CHARS),
    )


def parse_from_robot(d: Any, max_id_chars: int = 128) -> RobotMsg:
    """A decoded frame from a robot -> a typed message (or :class:`ProtocolError`)."""
    if not isinstance(d, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "not a JSON object: expected a JSON object")
    kind = d.get("type")
    if kind == MsgType.STATUS.value:
        return _status(d, max_id_chars)
    if kind == MsgType.PING.value:
        return PingMsg()
    if kind == MsgType.HELLO.value:
        return _hello(d)
    raise ProtocolError(
        ErrorCode.BAD_MESSAGE,
        f"unknown message type {clip(repr(kind), 40)}; expected 'status', 'hello' or 'ping'",
    )


# -- creature -> robot: builders (the wire form) ----------------------------------------------


def welcome() -> dict[str, Any]:
    return {"type": "welcome", "protocol": PROTOCOL_VERSION, "tools": [TOOL_NAME]}


def ready(robot: str, body: str | None, actions: list[str] | None) -> dict[str, Any]:
    """The answer to a hello: who the creature takes this robot to be; ``actions`` None: all."""
    return {"type": "ready", "robot": robot, "body": body, "actions": actions}


def tool_call(call_id: str, args: dict[str, Any], attempt: int) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": call_id,
        "name": TOOL_NAME,
        "arguments": args,
        "attempt": attempt,
    }


def cancel(call_id: str, reason: str | None) -> dict[str, Any]:
    return {"type": "cancel", "id": call_id, "reason": reason}


def error(code: ErrorCode | str, message: str, call_id: str | None = None) -> dict[str, Any]:
    """The one error reply; ``call_id`` is quoted clipped."""
    out: dict[str, Any] = {"type": "error", "code": getattr(code, "value", code), "error": message}
    if call_id is not None:
        out["id"] = clip(call_id)
    return out


def pong() -> dict[str, Any]:
    return {"type": "pong"}
