"""What the ROS 2 body says to the creature (its hello, each status) and the log line it
writes for a status. Like the rest of the body program it imports only the robot protocol."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.bodies import protocol
from orchestrator.bodies.protocol import Capability, Status

MAX_TEXT = 200  # a status's reason or text: a short line, clipped


def status_text(
    call_id: str,
    st: Status,
    reason: str | None = None,
    progress: float | None = None,
    text: str | None = None,
) -> str:
    """A status as this body sends it: reason and text clipped, progress kept within 0..1."""
    return json.dumps(
        protocol.status(
            call_id,
            st,
            reason[:MAX_TEXT] if reason else None,
            None if progress is None else round(min(1.0, max(0.0, progress)), 3),
            text[:MAX_TEXT] if text else None,
        )
    )


def hello_text(body: str, capabilities: list[Capability]) -> str:
    """The handshake: a goal's fields take what the call says, so no slot is narrowed here (a
    slot not named takes any value, docs/bodies.md)."""
    return json.dumps(protocol.hello(body, capabilities))


def status_line(call_id: str, st: Status, reason: str | None, extra: dict[str, Any]) -> str:
    """``c1 -> running progress 0.50``: a status as the body's log shows it."""
    shown = " ".join(
        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in extra.items()
        if v is not None
    )
    return (
        f"{call_id} -> {st.value}"
        + (f" ({reason})" if reason else "")
        + (f" {shown}" if shown else "")
    )
