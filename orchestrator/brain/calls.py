"""A tool call's lifecycle: one status enum and the rule for which update may follow which.

``queued`` (stored) -> ``sent`` (handed to a robot or webhook) -> ``accepted`` -> ``running``
-> one terminal status. ``cancelling`` is the creature's own step between asking a robot to
stop and hearing back.

Every update is one of three kinds (``CallStatus.transition``), read from ``NEXT``, the
transition table:

* ``MOVE``: in the table, taken;
* ``STALE``: backwards or the same status (a late duplicate, a retry's re-report): ignored, no
  error, because at-least-once delivery makes these normal;
* ``ILLEGAL``: neither, e.g. ``succeeded`` straight from ``queued`` (the call never left the
  creature, so no robot can have done it) or ``failed`` after ``succeeded``: answered with an
  error (code ``illegal_transition``), recorded, and ignored.
"""

from __future__ import annotations

from enum import Enum

from track2_voice.common.errors import CreatureError


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

    def transition(self, new: CallStatus) -> Transition:
        if new in NEXT[self]:
            return Transition.MOVE
        if new is self or (not self.terminal and new.rank < self.rank):
            return Transition.STALE
        return Transition.ILLEGAL

    def may_become(self, new: CallStatus) -> bool:
        return self.transition(new) is Transition.MOVE


class Transition(str, Enum):
    MOVE = "move"
    STALE = "stale"
    ILLEGAL = "illegal"


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
_S = CallStatus
# the transition table: which status may follow which (anything else is stale or illegal)
NEXT: dict[CallStatus, frozenset[CallStatus]] = {
    _S.QUEUED: frozenset({_S.SENT, _S.CANCELLING, _S.CANCELLED, _S.REJECTED}),
    _S.SENT: frozenset(
        {_S.ACCEPTED, _S.RUNNING, _S.CANCELLING, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED}
    ),
    _S.ACCEPTED: frozenset({_S.RUNNING, _S.CANCELLING, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.CANCELLING, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
    _S.CANCELLING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
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
    ILLEGAL_TRANSITION = "illegal_transition"  # e.g. succeeded for a call never delivered
    NOT_YOURS = "not_yours"  # the call was sent to another connection (or not to the webhook)
    BAD_ID = "bad_id"  # not a string, or longer than slow_loop.robot.max_id_chars


class StatusError(CreatureError, ValueError):
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
