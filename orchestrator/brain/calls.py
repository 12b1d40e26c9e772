"""A tool call's lifecycle: one status enum and the rule for which update may follow which.

``queued`` (stored) -> ``sent`` (handed to a robot or webhook) -> ``accepted`` -> ``running``
-> one terminal status. ``cancelling`` is the creature's own step between asking a robot to
stop and hearing back. A status never moves backwards: a late duplicate or a retry's re-report
is ignored, not an error.
"""

from __future__ import annotations

from enum import Enum


class CallStatus(str, Enum):
    """Stored as its value (a plain string) in the outbox and in every message."""

    QUEUED = "queued"
    SENT = "sent"
    ACCEPTED = "accepted"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def delivered(self) -> bool:
        """A robot has acknowledged the call (it may be at work)."""
        return self not in UNDELIVERED

    def may_become(self, new: CallStatus) -> bool:
        """The transition table: forward only, never out of a terminal status."""
        return not self.terminal and new is not self and new.rank >= self.rank


_RANK = {
    CallStatus.QUEUED: 0,
    CallStatus.SENT: 1,
    CallStatus.ACCEPTED: 2,
    CallStatus.RUNNING: 3,
    CallStatus.CANCELLING: 4,
    CallStatus.SUCCEEDED: 5,
    CallStatus.FAILED: 5,
    CallStatus.CANCELLED: 5,
    CallStatus.REJECTED: 5,
}
TERMINAL = frozenset(
    {CallStatus.SUCCEEDED, CallStatus.FAILED, CallStatus.CANCELLED, CallStatus.REJECTED}
)
UNDELIVERED = frozenset({CallStatus.QUEUED, CallStatus.SENT})
# what a robot (or a webhook-driven one) may report
FROM_ROBOT = (
    CallStatus.ACCEPTED,
    CallStatus.RUNNING,
    CallStatus.SUCCEEDED,
    CallStatus.FAILED,
    CallStatus.CANCELLED,
)


class StatusErrorCode(str, Enum):
    UNKNOWN_CALL = "unknown_call"
    BAD_STATUS = "bad_status"


class StatusError(ValueError):
    """A status update the creature cannot take; ``code`` says which kind (the robot channel
    turns it into an error message or an HTTP status), the text says what was wrong."""

    def __init__(self, code: StatusErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_robot_status(value: str) -> CallStatus:
    try:
        status = CallStatus(value)
    except ValueError:
        status = None
    if status not in FROM_ROBOT:
        raise StatusError(
            StatusErrorCode.BAD_STATUS,
            f"status must be one of {[s.value for s in FROM_ROBOT]}, got {value!r}",
        )
    return status
