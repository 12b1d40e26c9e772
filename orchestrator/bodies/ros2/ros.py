"""rclpy for the ROS 2 body: one node, one action client per mapped server, spun in a thread
of its own, and :func:`bridge_future`, which hands an rclpy future's result to the asyncio loop
that owns the WebSocket (which so never waits on ROS). rclpy is imported when a :class:`Ros` is
made, so the map can be checked (and the bridge imported) without ROS 2."""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from typing import Any

from orchestrator.bodies.protocol import Status
from orchestrator.bodies.ros2.action_map import ActionMap, Route, get_field

log = logging.getLogger("ros2-body")
# action_msgs/msg/GoalStatus
GOAL_SUCCEEDED, GOAL_CANCELED, GOAL_ABORTED = 4, 5, 6


class Ros:
    """rclpy: one node, one action client per mapped server, spun in a thread."""

    def __init__(self, amap: ActionMap) -> None:
        import rclpy
        from rclpy.action import ActionClient
        from rclpy.executors import MultiThreadedExecutor

        self.rclpy = rclpy
        rclpy.init()
        self.node = rclpy.create_node(
            "creature_body_" + amap.body.replace("-", "_").replace(".", "_")
        )
        self.types: dict[str, Any] = {}
        self.clients: dict[str, Any] = {}
        routes = list(amap.routes.values()) + ([amap.generic] if amap.generic else [])
        for r in routes:
            t = self._interface(r)
            if t is not None and r.server not in self.clients:
                self.clients[r.server] = ActionClient(self.node, t, r.server)
        self.executor = MultiThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, name="rclpy", daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as e:  # shutdown races end the spin; nothing else should
            log.debug("rclpy spin ended: %s", e)

    def _interface(self, r: Route) -> Any:
        if r.interface in self.types:
            return self.types[r.interface]
        pkg, _, name = r.interface.split("/")
        try:
            t = getattr(importlib.import_module(f"{pkg}.action"), name)
        except (ImportError, AttributeError) as e:
            log.warning(
                "%s: interface %s is not installed here (%s): not declared",
                r.action,
                r.interface,
                e,
            )
            t = None
        self.types[r.interface] = t
        return t

    def ready(self, r: Route) -> bool:
        c = self.clients.get(r.server)
        return c is not None and self.types.get(r.interface) is not None and c.server_is_ready()

    def goal(self, r: Route, call: dict[str, Any]) -> Any:
        """The goal message for a call; ValueError names the field that would not take it."""
        goal = self.types[r.interface].Goal()
        for path, value in r.goal_values(call).items():
            *parents, last = path.split(".")
            msg = goal
            try:
                for p in parents:
                    msg = getattr(msg, p)
                setattr(msg, last, value)
            except (AttributeError, AssertionError, TypeError, ValueError) as e:
                raise ValueError(f"goal field {path} of {r.interface}: {e}") from None
        return goal

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def bridge_future(loop: asyncio.AbstractEventLoop, rfut: Any) -> asyncio.Future:
    """An rclpy future as an asyncio one (its callback runs in the rclpy thread)."""
    fut = loop.create_future()

    def done(f: Any) -> None:
        def settle() -> None:
            if fut.done():
                return
            exc = f.exception()
            fut.set_exception(exc) if exc is not None else fut.set_result(f.result())

        loop.call_soon_threadsafe(settle)

    rfut.add_done_callback(done)
    return fut


def _read(msg: Any, path: str | None) -> Any:
    """A mapped field of a message, or None when unmapped or missing."""
    if not path:
        return None
    try:
        return get_field(msg, path)
    except AttributeError:
        return None


def read_feedback(r: Route, fb: Any) -> tuple[float | None, str | None]:
    """A feedback message's progress (0..1) and short text, as the map says to read them."""
    text = _read(fb, r.text)
    return (r.progress.read(fb) if r.progress else None), (None if text is None else str(text))


def goal_outcome(
    r: Route, goal_status: int, result: Any, cancel: str | None
) -> tuple[Status, str | None]:
    """A finished goal as a call's outcome: SUCCEEDED (and the result's success field, when
    mapped) succeeds, CANCELED is cancelled (with the creature's reason, if it asked), anything
    else fails, with the result's reason field when mapped."""
    reason = _read(result, r.reason)
    reason = (str(reason) or None) if reason is not None else None
    if goal_status == GOAL_SUCCEEDED:
        ok = _read(result, r.success) if r.success else True
        if ok is None or bool(ok):
            return Status.SUCCEEDED, None
        return Status.FAILED, reason or f"{r.server} reported no success"
    if goal_status == GOAL_CANCELED:
        return Status.CANCELLED, cancel or f"cancelled by {r.server}"
    why = "aborted" if goal_status == GOAL_ABORTED else f"ended with goal status {goal_status}"
    return Status.FAILED, reason or f"{r.server}: goal {why}"
