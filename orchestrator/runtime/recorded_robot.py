"""The robot of a replay when the real one stays off: it answers each call as the recorded
robot answered the matching call of the record, at the recorded delays, so a fresh brain's
calls run their whole course without anything moving twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from orchestrator.analysis.record_file import Record
from orchestrator.brain.calls import StatusError
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.events import ToolCallSent, ToolStatusChanged

log = logging.getLogger(__name__)

NOT_A_ROBOT = ("creature", "http")  # status sources that are not the robot's own answers


@dataclass
class RecordedCall:
    action: str
    sent_t: float
    answers: list[tuple[float, str, str | None]] = field(default_factory=list)  # (delay, st, why)


class RecordedRobot:
    """A robot link that answers as the recorded robot did (a stand-in from the record, not a
    robot): the n-th call of an action gets the statuses of the n-th recorded call of that
    action, at the recorded delays (scaled by ``speed``). A repeated id is answered with the
    status already reported, as a real robot must; a cancel is honoured at once."""

    def __init__(
        self, name: str, calls: list[RecordedCall], dispatcher: ToolDispatcher, speed: float
    ) -> None:
        self.name = name
        self.dispatcher = dispatcher
        self.speed = speed
        self._unused = list(calls)
        self._last: dict[str, str] = {}
        self._silent: set[str] = set()  # calls the record has no answer for
        self._pending: dict[str, list[asyncio.TimerHandle]] = {}  # answers not given yet
        self.received = 0

    @property
    def due(self) -> int:
        """Answers scheduled and not given yet."""
        return sum(len(h) for h in self._pending.values())

    def send(self, message: dict[str, Any]) -> bool:
        loop = asyncio.get_running_loop()
        call_id = str(message.get("id"))
        if message.get("type") == "cancel":
            for h in self._pending.pop(call_id, []):
                h.cancel()
            if call_id in self._last:
                loop.call_soon(self._report, call_id, "cancelled", "cancelled by the creature")
            return True
        if message.get("type") != "tool_call":
            return True
        self.received += 1
        if call_id in self._pending or call_id in self._silent:  # delivered again: in hand
            return True
        if call_id in self._last:  # delivered again: re-report what we know
            loop.call_soon(self._report, call_id, self._last[call_id], None, False)
            return True
        action = message.get("arguments", {}).get("action")
        match = next((c for c in self._unused if c.action == action), None)
        if match is None:
            log.info("replay: the record has no answer to a %s call; it stays open", action)
            self._silent.add(call_id)
            return True
        self._unused.remove(match)
        self._pending[call_id] = [
            loop.call_later(delay / self.speed, self._report, call_id, status, why)
            for delay, status, why in match.answers
        ]
        return True

    def _report(self, call_id: str, status: str, why: str | None, remember: bool = True) -> None:
        if remember:
            self._last[call_id] = status
            handles = self._pending.get(call_id)
            if handles:
                handles.pop(0)  # answers fire in the order they were scheduled
        try:
            self.dispatcher.on_status(call_id, status, why, self.name, link=self)
        except StatusError as e:
            log.info("replay: status %s for %s not taken: %s", status, call_id, e)

    def close(self) -> None:
        for handles in self._pending.values():
            for h in handles:
                h.cancel()
        self._pending.clear()


def recorded_calls(rec: Record) -> dict[str, list[RecordedCall]]:
    """Per robot name, the calls it answered in the record, in the order they were sent."""
    sent: dict[str, RecordedCall] = {}
    robot_of: dict[str, str] = {}
    for ev in rec.events:
        if isinstance(ev, ToolCallSent):
            sent[ev.id] = RecordedCall(str(ev.arguments.get("action")), ev.t)
        elif isinstance(ev, ToolStatusChanged) and ev.source not in NOT_A_ROBOT:
            call = sent.get(ev.id)
            if call is not None:
                call.answers.append((max(0.0, ev.t - call.sent_t), ev.status.value, ev.reason))
                robot_of.setdefault(ev.id, ev.source)
    out: dict[str, list[RecordedCall]] = {}
    for call_id, call in sent.items():
        if call_id in robot_of:
            out.setdefault(robot_of[call_id], []).append(call)
    return out
