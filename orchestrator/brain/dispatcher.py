"""From intent to robot: safety gate, outbox, delivery, status lifecycle, cancel.

Runs on the brain's event loop. Every step is reported as a typed event through ``emit``
(the brain publishes those to the bus, so the session record shows them all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator.brain.calls import (
    CallStatus,
    StatusError,
    StatusErrorCode,
    Transition,
    parse_robot_status,
)
from orchestrator.brain.events import (
    CallsCancelled,
    RobotConnected,
    RobotDisconnected,
    StatusRefused,
    ToolCallSent,
    ToolRejected,
    ToolStatusChanged,
    WebhookResult,
)
from orchestrator.brain.intents import Intent
from orchestrator.brain.outbox import Outbox
from orchestrator.brain.tool_schema import ToolSchema, tool_schema
from orchestrator.brain.tools import TOOL_NAME, SafetyGate, call_from_intent
from track2_voice.events import Happening

log = logging.getLogger(__name__)
Emit = Callable[[Happening], None]


class RobotLink(Protocol):
    """A connected robot: ``send`` queues a message and never waits."""

    name: str

    def send(self, message: dict[str, Any]) -> bool: ...


def cancel_message(call_id: str, reason: str | None) -> dict[str, Any]:
    return {"type": "cancel", "id": call_id, "reason": reason}


def tool_call_message(call_id: str, args: dict[str, Any], attempt: int) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": call_id,
        "name": TOOL_NAME,
        "arguments": args,
        "attempt": attempt,
    }


class ToolDispatcher:
    def __init__(
        self,
        outbox: Outbox,
        gate: SafetyGate,
        emit: Emit,
        max_age_s: float = 0.0,
        schema: ToolSchema | None = None,
    ) -> None:
        self.schema = schema or tool_schema(gate.actions)
        self.outbox = outbox
        self.gate = gate
        self.emit = emit
        self.robots: list[RobotLink] = []
        # which connection each call was last handed to: only that one may report on it
        # (kept until that connection goes, so a late conflicting report is still its own)
        self.sent_to: dict[str, RobotLink] = {}
        self.webhook = None  # a WebhookSink, set by the slow loop when configured
        self.max_age_s = max_age_s

    # -- robots -------------------------------------------------------------------------
    @property
    def robot(self) -> RobotLink | None:
        """The robot that gets calls: the one connected most recently."""
        return self.robots[-1] if self.robots else None

    def robot_connected(self, link: RobotLink) -> None:
        self.robots.append(link)
        self.emit(RobotConnected(robot=link.name, robots=len(self.robots)))
        self.flush()

    def robot_named(self, name: str) -> RobotLink | None:
        return next((r for r in self.robots if r.name == name), None)

    def robot_disconnected(self, link: RobotLink, why: str = "") -> None:
        if link in self.robots:
            self.robots.remove(link)
            for call_id in [c for c, r in self.sent_to.items() if r is link]:
                del self.sent_to[call_id]
            self.emit(RobotDisconnected(robot=link.name, reason=why, robots=len(self.robots)))
            self.flush()  # anything unacknowledged goes to the next robot, if any

    def flush(self) -> None:
        """Send every open call, oldest first, to the current robot: unacknowledged ones to be
        done, acknowledged ones again so the robot re-reports (or resumes) them, and pending
        cancels. A robot ignores an id it has seen, apart from re-reporting its status. A call
        another connected robot holds stays with it."""
        robot = self.robot
        if robot is None:
            return
        now = time.time()
        for call in self.outbox.open_calls():
            owner = self.sent_to.get(call.id)
            if owner is not None and owner is not robot and owner in self.robots:
                continue  # another connected robot has it: a newcomer must not take it over
            age = now - float(call.args.get("created", now))
            if self.max_age_s and age > self.max_age_s:
                # a stale promise must not start a robot long after the conversation moved on
                self._expire(call)
                continue
            if call.status is CallStatus.CANCELLING:
                msg = cancel_message(call.id, call.reason)
            else:
                msg = tool_call_message(call.id, call.args, call.attempts + 1)
            if not robot.send(msg):
                return
            self.sent_to[call.id] = robot
            self.outbox.mark_sent(call.id)

    def _expire(self, call) -> None:
        delivered = call.status.delivered
        why = (
            f"expired: no outcome within {self.max_age_s:g}s (slow_loop.outbox.max_age_s)"
            if delivered
            else f"expired: not delivered within {self.max_age_s:g}s (slow_loop.outbox.max_age_s)"
        )
        if self.outbox.update(call.id, CallStatus.CANCELLED, why) is None:
            return
        self._status(call, CallStatus.CANCELLED, why, "creature")
        if delivered:
            self._send_cancel(call.id, why)

    def _send_cancel(self, call_id: str, reason: str | None) -> None:
        """To the robot that has the call; to every robot if that one is gone (it may be
        back under another connection)."""
        owner = self.sent_to.get(call_id)
        for robot in [owner] if owner in self.robots else self.robots:
            robot.send(cancel_message(call_id, reason))

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
        call = self.outbox.add(args, webhook=self.webhook is not None)
        # the robot's send goes first: its sender task is woken before anything scheduled below
        robot = self.robot
        sent = robot is not None and robot.send(tool_call_message(call.id, args, 1))
        self.emit(
            ToolCallSent(
                id=call.id,
                name=TOOL_NAME,
                arguments=args,
                intent=intent.id,
                robot=getattr(robot, "name", None),
            )
        )
        if sent:
            self.sent_to[call.id] = robot
            self.outbox.mark_sent(call.id)
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
    ) -> None:
        """A status update from ``link`` (a robot connection), or over HTTP when None. Raises
        :class:`StatusError` for one the creature cannot take (after recording it as a
        ``StatusRefused`` event when the call exists); a duplicate or out-of-date update is
        harmless and ignored."""
        status = parse_robot_status(value)
        call = self.outbox.get(call_id)
        if call is None:
            raise StatusError(StatusErrorCode.UNKNOWN_CALL, f"unknown call id {call_id!r}")
        if link is not None and self.sent_to.get(call_id) is not link:
            self._refuse(
                call,
                status,
                source,
                StatusErrorCode.NOT_YOURS,
                f"call {call_id} was not sent to this connection",
            )
        if link is None:
            if call.webhook is None or call.webhook == "failed":
                self._refuse(
                    call,
                    status,
                    source,
                    StatusErrorCode.NOT_YOURS,
                    f"call {call_id} was never delivered to the webhook",
                )
            if call.status is CallStatus.QUEUED:  # the receiver's report proves delivery
                self.outbox.mark_sent(call_id)
                call.status = CallStatus.SENT
        move = call.status.transition(status)
        if move is Transition.ILLEGAL:
            self._refuse(
                call,
                status,
                source,
                StatusErrorCode.ILLEGAL_TRANSITION,
                f"call {call_id} is {call.status.value}: it cannot become {status.value}",
            )
        if move is Transition.STALE:
            return
        updated = self.outbox.update(call_id, status, reason)
        if updated is not None:
            self._status(updated, status, reason, source)

    def _refuse(self, call, status: CallStatus, source: str, code: StatusErrorCode, why: str):
        self.emit(
            StatusRefused(
                id=call.id,
                status=status.value,
                current=call.status.value,
                code=code.value,
                source=source,
            )
        )
        raise StatusError(code, why)

    def _status(self, call, status: CallStatus, reason: str | None, source: str) -> None:
        self.emit(
            ToolStatusChanged(
                id=call.id,
                status=status,
                reason=reason,
                action=call.args.get("action"),
                source=source,
            )
        )

    def cancel_all(self, reason: str) -> list[str]:
        """Cancel every open call at once: undelivered ones never leave, the rest get a cancel."""
        cancelled = []
        self.emit(CallsCancelled(reason=reason, ids=[c.id for c in self.outbox.open_calls()]))
        for call in self.outbox.open_calls():
            cancelled.append(call.id)
            if call.status is CallStatus.QUEUED:  # never left: nobody to tell
                self.outbox.update(call.id, CallStatus.CANCELLED, reason)
                self._status(call, CallStatus.CANCELLED, reason, "creature")
                continue
            self.outbox.update(call.id, CallStatus.CANCELLING, reason)
            self._send_cancel(call.id, reason)
            if self.webhook is not None:
                self.webhook.submit(cancel_message(call.id, reason))
        return cancelled

    def on_webhook_result(self, call_id: str, state: str, reason: str | None) -> None:
        self.outbox.set_webhook(call_id, state)
        if state == "done":
            self.outbox.mark_sent(call_id)
        self.emit(WebhookResult(id=call_id, state=state, reason=reason))
