"""The connected bodies as the dispatcher sees them: who is connected (newest last), since
when a name has been gone, and what each can do. A body that sent no capabilities can do
everything; the tool the model is offered is narrowed to what the connected bodies can do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from orchestrator.brain import capabilities
from orchestrator.brain.calls import CallStatus
from orchestrator.brain.events import RobotConnected, RobotDisconnected
from orchestrator.brain.outbox import OutboxCall
from orchestrator.brain.tool_schema import ToolSchema
from track2_voice.events import DiscreteEvent

NO_CAPABLE_ROBOT = "no_capable_robot"
Emit = Callable[[DiscreteEvent], None]


class RobotLink(Protocol):
    """A connected robot: ``send`` queues a message and never waits. It may also carry
    ``capabilities`` and ``body`` (its hello); without them it can do everything."""

    name: str

    def send(self, message: dict[str, Any]) -> bool: ...


def caps_of(link: RobotLink) -> capabilities.Capabilities:
    return getattr(link, "capabilities", None)


def not_for(call: OutboxCall, robot: RobotLink) -> bool:
    """A call ``robot`` is not sent when it flushes: another body's task (it waits for that
    body, reclaim_s), a webhook's call being cancelled (nothing for a robot to stop), or a
    thing this body cannot do (it waits for one that can)."""
    if call.robot is not None:
        return call.robot != robot.name
    return call.status is CallStatus.CANCELLING or not capabilities.can_do(
        caps_of(robot), call.args
    )


class RobotRoster:
    """Who is connected and what they can do; :class:`ToolDispatcher` adds the calls."""

    def __init__(self, schema: ToolSchema, emit: Emit, clock: Callable[[], float]) -> None:
        self.schema = schema
        self.emit = emit
        self.clock = clock
        self.robots: list[RobotLink] = []
        self.lost_since: dict[str, float] = {}  # robot name -> when its link dropped

    def arrived(self, link: RobotLink) -> None:
        """``link`` is the newest body (the dispatcher then sends it what is its to do)."""
        self.robots.append(link)
        self.lost_since.pop(link.name, None)
        caps = caps_of(link)
        self.emit(
            RobotConnected(
                robot=link.name,
                robots=len(self.robots),
                body=getattr(link, "body", None),
                actions=None if caps is None else [c.action for c in caps],
            )
        )

    def robot_disconnected(self, link: RobotLink, why: str = "") -> None:
        """Its calls stay its own: they wait for a robot of the same name (``reclaim_s``)."""
        if link in self.robots:
            self.robots.remove(link)
            if self.robot_named(link.name) is None:
                self.lost_since[link.name] = self.clock()
            self.emit(RobotDisconnected(robot=link.name, reason=why, robots=len(self.robots)))

    @property
    def robot(self) -> RobotLink | None:
        """The robot that gets new calls: the one connected most recently."""
        return self.robots[-1] if self.robots else None

    def robot_named(self, name: str) -> RobotLink | None:
        return next((r for r in self.robots if r.name == name), None)

    def capable(self, args: dict[str, Any]) -> list[RobotLink]:
        """The connected robots that can do the call ``args``, oldest first."""
        return [r for r in self.robots if capabilities.can_do(caps_of(r), args)]

    def describe(self, args: dict[str, Any]) -> str:
        """``gesture gesture=dance``: the action and the slots a call carries."""
        slots = [f"{k}={args[k]}" for k in self.schema.slots if args.get(k)]
        return " ".join([str(args.get("action")), *slots])

    def bodies_text(self) -> str:
        return "; ".join(
            f"{r.name}"
            + (f" ({r.body})" if getattr(r, "body", None) else "")
            + f": {capabilities.describe(caps_of(r))}"
            for r in self.robots
        )

    def cannot_do(self, args: dict[str, Any]) -> str:
        """Why a call is refused when no connected body can do it."""
        return f"{NO_CAPABLE_ROBOT}: no connected body can do {self.describe(args)} " + (
            f"(connected: {self.bodies_text()})"
        )

    def tool_definition(self, full: bool = False) -> dict[str, Any]:
        """The tool as the connected bodies can do it (``full``: as declared)."""
        if full:
            return self.schema.definition
        return capabilities.narrowed(self.schema.actions, [caps_of(r) for r in self.robots])
