"""What a body can do (its hello, docs/bodies.md), checked against the action declarations,
and the questions routing asks of it: can this body do this call, and what does the tool look
like narrowed to the bodies connected now.

A body that declared nothing (``capabilities`` None) can do everything, as every robot could
before bodies declared anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from orchestrator.brain.actions import ActionSet
from orchestrator.brain.robot_protocol import Capability, ErrorCode, ProtocolError, clip
from orchestrator.brain.tool_schema import build_definition

Capabilities = tuple[Capability, ...] | None


def check(actions: ActionSet, caps: Capabilities) -> None:
    """Raise ``ProtocolError(bad_hello)`` naming the first thing the declarations do not have:
    an undeclared action, a slot the action does not take, a value outside the slot's enum."""
    for i, cap in enumerate(caps or ()):
        where = f"hello: capabilities[{i}]"
        action = actions.get(cap.action)
        if action is None:
            raise ProtocolError(
                ErrorCode.BAD_HELLO,
                f"{where}: unknown action {clip(cap.action)!r}; declared: {', '.join(actions.names)}",
            )
        for slot, values in cap.slots:
            if slot not in action.slots:
                raise ProtocolError(
                    ErrorCode.BAD_HELLO,
                    f"{where}: {cap.action} has no slot {clip(slot)!r}; its slots: "
                    f"{', '.join(action.slots) or 'none'}",
                )
            enum = actions.slots[slot].enum
            bad = [v for v in values if enum is not None and v not in enum]
            if bad:
                raise ProtocolError(
                    ErrorCode.BAD_HELLO,
                    f"{where}: {clip(bad[0])!r} is not a value of slot {slot} ({', '.join(enum)})",
                )


def can_do(caps: Capabilities, args: dict[str, Any]) -> bool:
    """Whether a body with ``caps`` can do the call ``args`` (its action, and every slot value
    it carries that the body restricted)."""
    if caps is None:
        return True
    for cap in caps:
        if cap.action == args.get("action") and all(
            cap.accepts(slot, args.get(slot)) for slot, _ in cap.slots
        ):
            return True
    return False


def describe(caps: Capabilities) -> str:
    return "everything" if caps is None else ", ".join(c.action for c in caps) or "nothing"


def narrowed(actions: ActionSet, bodies: Iterable[Capabilities]) -> dict[str, Any]:
    """The tool (OpenAI function form) as the connected ``bodies`` can do it: the action enum
    cut to what some body declared, a slot's enum cut to the values the bodies accept. No body,
    or one that declared nothing: the full tool (a call then waits for, or goes to, it)."""
    bodies = list(bodies)
    if not bodies or any(caps is None for caps in bodies):
        return build_definition(actions)
    caps = [c for body in bodies for c in body]
    names = [n for n in actions.names if any(c.action == n for c in caps)]
    slots = {}
    for name, slot in actions.slots.items():
        users = [c for c in caps if c.action in names and name in actions.actions[c.action].slots]
        limits = [dict(c.slots).get(name) for c in users]
        if users and slot.enum is not None and all(lim is not None for lim in limits):
            allowed = {v for lim in limits for v in lim}
            slot = dataclasses.replace(slot, enum=tuple(v for v in slot.enum if v in allowed))
        slots[name] = slot
    return build_definition(
        dataclasses.replace(actions, slots=slots, actions={n: actions.actions[n] for n in names})
    )
