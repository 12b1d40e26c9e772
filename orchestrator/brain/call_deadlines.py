"""How long a call may wait at each step, and the line that says why one waited too long.

The dispatcher's clock (``ToolDispatcher.sweep``) asks these of every open call: expired (no
robot, or no outcome, within the outbox's ages), its robot lost past ``reclaim_s``, or sent
and not acknowledged within ``ack_timeout_s``. Each answer names the setting that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.brain.calls import CallStatus
from orchestrator.brain.outbox import OutboxCall
from orchestrator.brain.robot_protocol import clip


@dataclass(frozen=True)
class CallTiming:
    """How long a call may wait at each step (seconds; 0 = no limit). From ``slow_loop``:
    ``outbox.max_age_s``, ``outbox.queued_max_age_s``, ``robot.reclaim_s``,
    ``robot.ack_timeout_s``."""

    max_age_s: float = 0.0
    queued_max_age_s: float = 0.0
    reclaim_s: float = 30.0
    ack_timeout_s: float = 0.0


def expiry(call: OutboxCall, now: float, t: CallTiming) -> str | None:
    """Why the call waited too long since it was made, or None."""
    age = now - float(call.args.get("created", call.created or now))
    if call.status is CallStatus.QUEUED and t.queued_max_age_s and age > t.queued_max_age_s:
        return (
            f"expired: no robot within {t.queued_max_age_s:g}s of the conversation "
            "(slow_loop.outbox.queued_max_age_s)"
        )
    if t.max_age_s and age > t.max_age_s:
        if call.status.delivered:
            return f"expired: no outcome within {t.max_age_s:g}s (slow_loop.outbox.max_age_s)"
        return f"expired: not delivered within {t.max_age_s:g}s (slow_loop.outbox.max_age_s)"
    return None


def reclaim_lapsed(owner: str, lost: float, now: float, t: CallTiming) -> str | None:
    """Why a call whose robot is gone is failed (it did not come back in time), or None."""
    if now - lost < t.reclaim_s:
        return None
    return (
        f"robot lost: {clip(owner)} did not come back within {t.reclaim_s:g}s "
        "(slow_loop.robot.reclaim_s)"
    )


def unacknowledged(
    call: OutboxCall, owner: str, sent: float | None, now: float, t: CallTiming
) -> str | None:
    """Why a call sent to its robot is failed (no ``accepted`` in time), or None."""
    if call.status is not CallStatus.SENT or not t.ack_timeout_s or sent is None:
        return None
    if now - sent < t.ack_timeout_s:
        return None
    return (
        f"not acknowledged by {clip(owner)} within {t.ack_timeout_s:g}s "
        "(slow_loop.robot.ack_timeout_s)"
    )
