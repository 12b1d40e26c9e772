"""From intent to robot: safety gate, outbox, delivery, status lifecycle, cancel.

Runs on the slow loop's asyncio thread. Every step is reported through ``emit(kind, data)``
(the slow loop publishes those to the hub, so the session record shows them all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator.brain.intents import Intent
from orchestrator.brain.outbox import UNDELIVERED, Outbox
from orchestrator.brain.tools import ROBOT_STATUSES, TOOL_NAME, SafetyGate, call_from_intent

log = logging.getLogger(__name__)
Emit = Callable[[str, dict[str, Any]], None]


class RobotLink(Protocol):
    """A connected robot: ``send`` queues a message and never waits."""

    name: str

    def send(self, message: dict[str, Any]) -> bool: ...


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
        self, outbox: Outbox, gate: SafetyGate, emit: Emit, max_age_s: float = 0.0
    ) -> None:
        self.outbox = outbox
        self.gate = gate
        self.emit = emit
        self.robots: list[RobotLink] = []
        self.webhook = None  # a WebhookSink, set by the slow loop when configured
        self.max_age_s = max_age_s

    # -- robots -------------------------------------------------------------------------
    @property
    def robot(self) -> RobotLink | None:
        """The robot that gets calls: the one connected most recently."""
        return self.robots[-1] if self.robots else None

    def robot_connected(self, link: RobotLink) -> None:
        self.robots.append(link)
        self.emit("robot_connected", {"robot": link.name, "robots": len(self.robots)})
        self.flush()

    def robot_disconnected(self, link: RobotLink, why: str = "") -> None:
        if link in self.robots:
            self.robots.remove(link)
            self.emit(
                "robot_disconnected",
                {"robot": link.name, "reason": why, "robots": len(self.robots)},
            )
            self.flush()  # anything unacknowledged goes to the next robot, if any

    def flush(self) -> None:
        """Send every open call, oldest first, to the current robot: unacknowledged ones to be
        done, acknowledged ones again so the robot re-reports (or resumes) them, and pending
        cancels. A robot ignores an id it has seen, apart from re-reporting its status."""
        robot = self.robot
        if robot is None:
            return
        now = time.time()
        for call in self.outbox.open_calls():
            age = now - float(call.args.get("created", now))
            if self.max_age_s and age > self.max_age_s:
                # a stale promise must not start a robot long after the conversation moved on
                self._expire(call)
                continue
            if call.status == "cancelling":
                msg = {"type": "cancel", "id": call.id, "reason": call.reason}
            else:
                msg = tool_call_message(call.id, call.args, call.attempts + 1)
            if not robot.send(msg):
                return
            self.outbox.mark_sent(call.id)

    def _expire(self, call) -> None:
        delivered = call.status not in UNDELIVERED
        why = (
            f"expired: no outcome within {self.max_age_s:g}s (slow_loop.outbox.max_age_s)"
            if delivered
            else f"expired: not delivered within {self.max_age_s:g}s (slow_loop.outbox.max_age_s)"
        )
        if self.outbox.update(call.id, "cancelled", why) is None:
            return
        self.emit(
            "tool_status",
            {
                "id": call.id,
                "status": "cancelled",
                "reason": why,
                "action": call.args.get("action"),
                "source": "creature",
            },
        )
        if delivered:
            for r in self.robots:
                r.send({"type": "cancel", "id": call.id, "reason": why})

    # -- calls ----------------------------------------------------------------------------
    def submit(self, intent: Intent) -> dict[str, Any] | None:
        """Gate, store and send one intent. Returns the call arguments, or None if refused."""
        if intent.action == "stop":
            self.cancel_all(f"stop: {intent.phrase}")
            return None
        args = call_from_intent(intent)
        refused = self.gate.check(args)
        if refused is not None:
            self.outbox.add(args, status="rejected", reason=refused)
            self.emit(
                "tool_rejected",
                {
                    "id": args["id"],
                    "action": args["action"],
                    "reason": refused,
                    "intent": intent.id,
                },
            )
            return None
        call = self.outbox.add(args, webhook=self.webhook is not None)
        # the robot's send goes first: its sender task is woken before anything scheduled below
        robot = self.robot
        sent = robot is not None and robot.send(tool_call_message(call.id, args, 1))
        self.emit(
            "tool_call",
            {
                "id": call.id,
                "name": TOOL_NAME,
                "arguments": args,
                "intent": intent.id,
                "robot": getattr(robot, "name", None),
            },
        )
        if sent:
            self.outbox.mark_sent(call.id)
        if self.webhook is not None:
            self.webhook.submit(tool_call_message(call.id, args, 1))
        return args

    def on_status(self, call_id: str, status: str, reason: str | None, source: str) -> str | None:
        """A robot's status update. Returns an error string for a bad update, else None."""
        if status not in ROBOT_STATUSES:
            return f"status must be one of {list(ROBOT_STATUSES)}, got {status!r}"
        known = self.outbox.get(call_id)
        if known is None:
            return f"unknown call id {call_id!r}"
        call = self.outbox.update(call_id, status, reason)
        if call is None:
            return None  # a duplicate or out-of-date update: harmless, ignored
        self.emit(
            "tool_status",
            {
                "id": call_id,
                "status": status,
                "reason": reason,
                "action": call.args.get("action"),
                "source": source,
            },
        )
        return None

    def cancel_all(self, reason: str) -> list[str]:
        """Cancel every open call at once: undelivered ones never leave, the rest get a cancel."""
        cancelled = []
        self.emit(
            "tool_cancel", {"reason": reason, "ids": [c.id for c in self.outbox.open_calls()]}
        )
        for call in self.outbox.open_calls():
            cancelled.append(call.id)
            if call.status in UNDELIVERED and call.status == "queued":
                self.outbox.update(call.id, "cancelled", reason)
                self.emit(
                    "tool_status",
                    {
                        "id": call.id,
                        "status": "cancelled",
                        "reason": reason,
                        "action": call.args.get("action"),
                        "source": "creature",
                    },
                )
                continue
            self.outbox.update(call.id, "cancelling", reason)
            msg = {"type": "cancel", "id": call.id, "reason": reason}
            for robot in self.robots:
                robot.send(msg)
            if self.webhook is not None:
                self.webhook.submit(msg)
        return cancelled

    def on_webhook_result(self, call_id: str, state: str, reason: str | None) -> None:
        self.outbox.set_webhook(call_id, state)
        if state == "done":
            self.outbox.mark_sent(call_id)
        self.emit("webhook", {"id": call_id, "state": state, "reason": reason})
