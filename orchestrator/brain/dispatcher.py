"""From intent to robot: safety gate, outbox, delivery, status lifecycle, cancel.

Runs on the brain's event loop. Every step is reported as a typed event through ``emit``
(the brain publishes those to the bus, so the session record shows them all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from orchestrator.brain import robot_protocol as protocol
from orchestrator.brain import status_reports
from orchestrator.brain.call_deadlines import CallTiming, expiry, reclaim_lapsed, unacknowledged
from orchestrator.brain.calls import (
    CallStatus,
    StatusError,
    StatusErrorCode,
    Transition,
    parse_robot_status,
)
from orchestrator.brain.events import CallsCancelled, ToolCallSent, ToolRejected, WebhookResult
from orchestrator.brain.intents import Intent
from orchestrator.brain.outbox import Outbox, OutboxCall
from orchestrator.brain.robot_protocol import TOOL_NAME, clip
from orchestrator.brain.robot_roster import (  # noqa: F401 (re-exported)
    NO_CAPABLE_ROBOT,
    Emit,
    RobotLink,
    RobotRoster,
    caps_of,
    not_for,
)
from orchestrator.brain.tool_schema import ToolSchema, tool_schema
from orchestrator.brain.tools import SafetyGate, call_from_intent

log = logging.getLogger(__name__)
ALL_CALLS = "*"  # a cancel request for every open call (`creature calls cancel-all`)


# the wire forms, under the names the runtime has long used
cancel_message = protocol.cancel
tool_call_message = protocol.tool_call


class ToolDispatcher(RobotRoster):
    """One task, one body: a call sent to a robot is that robot's (by its name, kept in the
    outbox) until it reports an outcome. When its link drops the call waits
    ``timing.reclaim_s`` for the same name to come back and then fails; it is never handed to
    another body, because two bodies doing one task is worse than none doing it."""

    def __init__(
        self,
        outbox: Outbox,
        gate: SafetyGate | None,
        emit: Emit,
        timing: CallTiming | None = None,
        schema: ToolSchema | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            schema or tool_schema(gate.actions if gate is not None else None), emit, clock
        )
        self.outbox = outbox
        self.gate = gate
        self.timing = timing or CallTiming()
        self.sent_at: dict[str, float] = {}  # call id -> when last handed to its robot
        self.webhook = None  # a WebhookSink, set by the slow loop when configured

    # -- robots coming and going ------------------------------------------------------------
    def robot_connected(self, link: RobotLink) -> None:
        self.arrived(link)
        self.flush(link)

    def flush(self, link: RobotLink | None = None) -> None:
        """Send ``link`` (default: the newest robot) every open call that is its to do, oldest
        first: its own calls again (higher ``attempt``, so it re-reports or resumes them; a
        pending cancel as a cancel), and calls no robot has been sent yet. A call another
        robot owns is never sent to it, connected or not."""
        robot = link or self.robot
        if robot is None:
            return
        now = self.clock()
        for call in self.outbox.open_calls():
            if not_for(call, robot) or self._expired(call, now):
                continue
            if call.status is CallStatus.CANCELLING:
                msg = cancel_message(call.id, call.reason)
            else:
                msg = tool_call_message(call.id, call.args, call.attempts + 1)
            if not robot.send(msg):
                return
            self._handed(call.id, robot, now)

    def _handed(self, call_id: str, robot: RobotLink, now: float) -> None:
        self.sent_at[call_id] = now
        self.outbox.mark_sent(call_id, robot.name)

    def _expired(self, call: OutboxCall, now: float) -> bool:
        """Ends a call that waited too long; True when it did."""
        why = expiry(call, now, self.timing)
        if why is None:
            return False
        self._end(call, CallStatus.CANCELLED, why, tell=call.status is not CallStatus.QUEUED)
        return True

    def _end(self, call: OutboxCall, status: CallStatus, why: str, tell: bool) -> None:
        """The creature ends a call itself; ``tell``: its robot is sent a cancel."""
        if self.outbox.update(call.id, status, why) is None:
            return
        self.sent_at.pop(call.id, None)
        self._status(call, status, why, "creature")
        if tell:
            self._send_cancel(call.id, why)

    def sweep(self) -> None:
        """The clock's part of the lifecycle, called every fraction of a second by the runtime:
        expire calls nobody took in time, fail calls whose robot did not come back within
        ``reclaim_s`` or did not acknowledge within ``ack_timeout_s``."""
        self.take_operator_cancels()
        now = self.clock()
        for call in self.outbox.open_calls():
            if self._expired(call, now):
                continue
            owner = call.robot
            if owner is None:
                continue
            if self.robot_named(owner) is None:
                lost = self.lost_since.setdefault(owner, now)  # after a restart: from now
                why = reclaim_lapsed(owner, lost, now, self.timing)
                if why is not None:
                    self._end(call, CallStatus.FAILED, why, tell=False)
                continue
            why = unacknowledged(call, owner, self.sent_at.get(call.id), now, self.timing)
            if why is not None:
                self._end(call, CallStatus.FAILED, why, tell=True)

    def _send_cancel(self, call_id: str, reason: str | None) -> None:
        """To the robot whose call it is, if connected (else it gets the cancel when it comes
        back: a pending cancel is part of every flush)."""
        call = self.outbox.get(call_id)
        owner = self.robot_named(call.robot) if call is not None and call.robot else None
        if owner is not None:
            owner.send(cancel_message(call_id, reason))

    # -- calls ----------------------------------------------------------------------------
    def submit(self, intent: Intent) -> dict[str, Any] | None:
        """Gate, store and send one intent. Returns the call arguments, or None if refused."""
        if self.schema.actions.cancels_all(intent.action):
            self.cancel_all(f"{intent.action}: {intent.phrase}")
            return None
        args = call_from_intent(intent, schema=self.schema)
        refused = self.gate.check(args)
        if refused is not None:
            self.outbox.add(args, status=CallStatus.REJECTED, reason=refused)
            self.emit(
                ToolRejected(id=args["id"], action=args["action"], reason=refused, intent=intent.id)
            )
            return None
        capable = self.capable(args)
        if self.robots and not capable and self.webhook is None:
            # never queued for a body that may never come: the creature can't, and shows it
            why = self.cannot_do(args)
            self.outbox.add(args, status=CallStatus.REJECTED, reason=why)
            self.emit(
                ToolRejected(
                    id=args["id"],
                    action=args["action"],
                    reason=why,
                    intent=intent.id,
                    code=NO_CAPABLE_ROBOT,
                )
            )
            return None
        call = self.outbox.add(args, webhook=self.webhook is not None)
        # the robot's send goes first: its sender task is woken before anything scheduled below
        robot = capable[-1] if capable else None  # the newest body that can do it
        sent = robot is not None and robot.send(tool_call_message(call.id, args, 1))
        if sent:
            self._handed(call.id, robot, self.clock())
        self.emit(
            ToolCallSent(
                id=call.id,
                name=TOOL_NAME,
                arguments=args,
                intent=intent.id,
                robot=getattr(robot, "name", None),
            )
        )
        if self.webhook is not None:
            self.webhook.submit(tool_call_message(call.id, args, 1))
        return args

    def on_status(
        self,
        call_id: str,
        value: str,
        reason: str | None,
        source: str,
        link: RobotLink | None = None,
        progress: float | None = None,
        text: str | None = None,
    ) -> None:
        """A status update from ``link`` (a robot connection), or over HTTP when None. Raises
        :class:`StatusError` for one the creature cannot take (after recording it as a
        ``StatusRefused`` event when the call exists); a duplicate or out-of-date update is
        harmless and ignored. ``progress``/``text`` with ``running`` become a ``ToolProgress``
        (each report, also while the call already runs)."""
        status = parse_robot_status(value)
        call = self.outbox.get(call_id)
        if call is None:
            raise StatusError(StatusErrorCode.UNKNOWN_CALL, f"unknown call id {clip(call_id)!r}")
        self._check_sender(call, status, source, link)
        move = call.status.transition(status)
        if move is Transition.ILLEGAL:
            self._refuse(
                call,
                status,
                source,
                StatusErrorCode.ILLEGAL_TRANSITION,
                f"call {clip(call_id)} is {call.status.value}: it cannot become {status.value}",
            )
        if move is not Transition.STALE:
            updated = self.outbox.update(call_id, status, reason)
            if updated is not None:
                self._status(updated, status, reason, source)
                call = updated
        if status is CallStatus.RUNNING and call.status is CallStatus.RUNNING:
            if progress is not None or text:
                self.emit(status_reports.progressed(call, progress, text, source))

    def _check_sender(
        self, call: OutboxCall, status: CallStatus, source: str, link: RobotLink | None
    ) -> None:
        """Only the robot whose call it is may report on it (:func:`sender_refusal`); over
        HTTP the report proves the webhook delivered it."""
        why = status_reports.sender_refusal(call, link, self.robots)
        if why is not None:
            self._refuse(call, status, source, StatusErrorCode.NOT_YOURS, why)
        if link is None and call.status is CallStatus.QUEUED:
            self.outbox.mark_sent(call.id)
            call.status = CallStatus.SENT

    def _refuse(self, call, status: CallStatus, source: str, code: StatusErrorCode, why: str):
        self.emit(status_reports.refused(call, status, source, code))
        raise StatusError(code, why)

    def _status(self, call, status: CallStatus, reason: str | None, source: str) -> None:
        self.emit(status_reports.changed(call, status, reason, source))

    def cancel_all(self, reason: str) -> list[str]:
        """Cancel every open call at once: undelivered ones never leave, the rest get a cancel."""
        calls = self.outbox.open_calls()
        self.emit(CallsCancelled(reason=reason, ids=[c.id for c in calls]))
        for call in calls:
            self._cancel(call, reason)
        return [c.id for c in calls]

    def cancel(self, call_id: str, reason: str) -> bool:
        """Cancel one call (the operator's ``creature calls cancel``); False when it is not
        open."""
        call = self.outbox.get(call_id)
        if call is None or call.status.terminal:
            return False
        self.emit(CallsCancelled(reason=reason, ids=[call.id]))
        self._cancel(call, reason)
        return True

    def take_operator_cancels(self) -> None:
        """Cancels another process (``creature calls cancel``) left in the outbox."""
        for call_id, reason in self.outbox.take_cancel_requests():
            if call_id == ALL_CALLS:
                self.cancel_all(reason)
            else:
                self.cancel(call_id, reason)

    def _cancel(self, call: OutboxCall, reason: str) -> None:
        if call.status is CallStatus.QUEUED:  # never left: nobody to tell
            self.outbox.update(call.id, CallStatus.CANCELLED, reason)
            self._status(call, CallStatus.CANCELLED, reason, "creature")
            return
        self.outbox.update(call.id, CallStatus.CANCELLING, reason)
        self._send_cancel(call.id, reason)
        if self.webhook is not None:
            self.webhook.submit(cancel_message(call.id, reason))

    def on_webhook_result(self, call_id: str, state: str, reason: str | None) -> None:
        self.outbox.set_webhook(call_id, state)
        if state == "done":
            self.outbox.mark_sent(call_id)
        self.emit(WebhookResult(id=call_id, state=state, reason=reason))
