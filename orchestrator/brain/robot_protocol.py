"""The robot channel's messages, typed: one home for their shapes (docs/bodies.md,
docs/slow_loop.md "Robot channel protocol").

JSON text frames both ways. A robot sends ``hello`` (optional, first: its body and what it can
do), ``status`` (a call's progress and outcome) and ``ping``; the creature sends ``welcome``,
``ready`` (the answer to a hello), ``tool_call``, ``cancel``, ``error`` and ``pong``.

``parse_from_robot`` turns a decoded frame into a message or raises :class:`ProtocolError`
(its ``code`` goes into the error reply); ``parse_from_creature`` does the same on the robot's
side (the example robot and the body programs use it). The builders return the wire form (the
JSON object), so every ``{"type": "error", ...}`` is written by :func:`error` alone. Pure data:
nothing here reads a socket, so a body program can import it without the creature's servers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from track2_voice.common.errors import CreatureError

PROTOCOL_VERSION = 1
TOOL_NAME = "do_physical_task"
MAX_QUOTE_CHARS = 64  # an id or name quoted in an error reply
MAX_STATUS_CHARS = 32
MAX_REASON_CHARS = 500
MAX_PROGRESS_TEXT_CHARS = 120
MAX_BODY_CHARS = 64
MAX_CAPABILITIES = 64
MAX_SLOT_VALUES = 64


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


FROM_ROBOT = (MsgType.HELLO, MsgType.STATUS, MsgType.PING)


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


class ProtocolError(CreatureError, ValueError):
    """A frame that does not follow the protocol; ``code`` says which kind, ``id`` is the call
    it was about (clipped), when known."""

    def __init__(self, code: ErrorCode | str, message: str, call_id: str | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode(code) if not isinstance(code, ErrorCode) else code
        self.id = call_id


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


# -- robot side: builders and the parse of what the creature sends ----------------------------


def hello(body: str | None, capabilities: list[Capability] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "hello"}
    if body:
        out["body"] = body
    if capabilities is not None:
        out["capabilities"] = [c.wire() for c in capabilities]
    return out


def status(
    call_id: str,
    value: str,
    reason: str | None = None,
    progress: float | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "status", "id": call_id, "status": value}
    for key, v in (("reason", reason), ("progress", progress), ("text", text)):
        if v is not None:
            out[key] = v
    return out


def ping() -> dict[str, Any]:
    return {"type": "ping"}


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
        if kind == "tool_call":
            return ToolCallMsg(
                str(d["id"]), dict(d.get("arguments") or {}), int(d.get("attempt", 1))
            )
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
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{kind}: {e}") from None
    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type {clip(repr(kind), 40)}")
