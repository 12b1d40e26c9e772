"""The ROS 2 body: each creature call becomes a ROS 2 action goal.

    python -m orchestrator.bodies.ros2.bridge --map MAP.yaml --url ws://HOST:8766/robot

(``creature body ros2`` runs it in its own environment; the token comes from
``$CREATURE_ROBOT_TOKEN``.) The lifecycle maps one to one: a call -> ``send_goal`` on the
action server its action is mapped to; the goal accepted -> ``accepted`` then ``running``;
each feedback -> ``running`` with ``progress`` (0..1) and a short ``text``; the result ->
``succeeded`` (SUCCEEDED, and the result's success field if mapped), ``failed`` (ABORTED, a
rejected goal, a server that is not there) or ``cancelled`` (CANCELED); the creature's
``cancel`` -> ``cancel_goal``. The body declares as capabilities the mapped actions whose
server is present, on connect and whenever that changes.

A robot's duties (docs/slow_loop.md) hold here too: calls are deduped by id in a SQLite file
written before a goal is sent, so a call re-sent after a reconnect or a restart of this bridge
is never sent to ROS twice (one taken on before a restart is reported failed, not repeated).

rclpy spins in a thread of its own; its callbacks hand results to the asyncio loop that owns
the WebSocket, which never waits on ROS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from orchestrator.bodies import protocol
from orchestrator.bodies.duties import (
    TaskLog,
    cancel_answer,
    ended,
    keep_connected,
    messages_from,
)
from orchestrator.bodies.protocol import TERMINAL, Capability, Status
from orchestrator.bodies.ros2.action_map import ActionMap, MapError, Route, load_map
from orchestrator.bodies.ros2.messages import (  # noqa: F401 (MAX_TEXT: re-exported)
    MAX_TEXT,
    hello_text,
    status_line,
    status_text,
)
from orchestrator.bodies.ros2.ros import Ros, bridge_future, goal_outcome, read_feedback

log = logging.getLogger("ros2-body")
DISCOVER_S = 5.0  # the longest the first hello waits for the mapped action servers
ANNOUNCE_EVERY_S = 1.0  # how often the servers present are checked for a change
INTERRUPTED = "interrupted by a restart of the ROS 2 body: not repeated"


@dataclass
class Live:
    """A call whose goal is on its way or running."""

    route: Route
    task: asyncio.Task | None = None
    handle: Any = None
    cancel: str | None = None  # the creature asked to cancel (the reason)
    progress: float | None = None
    status: Status = Status.ACCEPTED
    last_sent: float = field(default=0.0)


class Ros2Body:
    def __init__(self, amap: ActionMap, url: str, token: str, db: str | Path) -> None:
        self.amap = amap
        self.url = url
        self.token = token
        self.log = TaskLog(db)
        self.ros: Ros | None = None
        self.live: dict[str, Live] = {}
        self._ws: Any = None
        self._unsent: list[str] = []
        self._declared: list[Capability] | None = None
        self._stop = asyncio.Event()

    # -- capabilities ---------------------------------------------------------------------
    def capabilities(self) -> list[Capability]:
        """The mapped actions whose action server is present now (the generic entry is not an
        action of its own: it serves the creature's actions that have no entry)."""
        assert self.ros is not None
        return [Capability(a) for a, r in self.amap.routes.items() if self.ros.ready(r)]

    async def _announce(self, force: bool = False) -> None:
        """The hello is a connection's first message and is said once (docs/bodies.md): when
        the servers present change, the bridge reconnects to say it again (the creature keeps
        this body's calls for it across the reconnect, slow_loop.robot.reclaim_s)."""
        caps = self.capabilities()
        if self._ws is None or (not force and caps == self._declared):
            return
        if not force:
            log.info("capabilities now %s: reconnecting to declare them", [c.action for c in caps])
            await self._ws.close()
            return
        self._declared = caps
        log.info("capabilities: %s", [c.action for c in caps] or "none")
        await self._send(hello_text(self.amap.body, caps))

    async def _discover(self) -> None:
        """Before the first hello: give DDS discovery a moment to find the action servers."""
        deadline = time.monotonic() + DISCOVER_S
        while time.monotonic() < deadline and len(self.capabilities()) < len(self.amap.routes):
            await asyncio.sleep(0.1)

    # -- messages out -----------------------------------------------------------------------
    async def _send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except (ConnectionClosed, AttributeError):
            self._unsent.append(text)  # a status waits for the reconnect (the outbox waits too)

    async def _status(self, call_id: str, st: Status, reason: str | None = None, **kw: Any) -> None:
        log.info("%s", status_line(call_id, st, reason, kw))
        if st is not Status.RUNNING:
            self.log.put(call_id, st, reason)
        text = status_text(call_id, st, reason, **kw)
        if st in TERMINAL:
            self.live.pop(call_id, None)
        await self._send(text)

    # -- calls ------------------------------------------------------------------------------
    async def on_call(self, call: protocol.ToolCallMsg) -> None:
        known = self.log.get(call.id)
        if known is not None:  # a re-send: never sent to ROS twice, just say where it stands
            st, reason = known
            if call.id in self.live:
                lv = self.live[call.id]
                await self._send(status_text(call.id, lv.status, progress=lv.progress))
                return
            if not ended(st):
                st, reason = Status.FAILED.value, INTERRUPTED
            await self._status(call.id, Status(st), reason)
            return
        route = self.amap.route(call.action)
        if route is None:
            self.log.put(call.id, Status.FAILED, "unmapped")
            await self._status(
                call.id, Status.FAILED, f"no ROS 2 action server is mapped for {call.action!r}"
            )
            return
        self.log.put(call.id, Status.ACCEPTED)  # committed before anything is sent to ROS
        lv = Live(route)
        self.live[call.id] = lv
        lv.task = asyncio.create_task(self._run(call, lv))

    async def _run(self, call: protocol.ToolCallMsg, lv: Live) -> None:
        assert self.ros is not None
        r = lv.route
        loop = asyncio.get_running_loop()
        if not self.ros.ready(r):
            await self._status(call.id, Status.FAILED, f"action server {r.server} is not running")
            return
        try:
            goal = self.ros.goal(r, {**call.arguments, "id": call.id})
        except ValueError as e:
            await self._status(call.id, Status.FAILED, str(e))
            return

        def feedback(msg: Any) -> None:  # rclpy thread
            loop.call_soon_threadsafe(self._feedback, call.id, msg.feedback)

        client = self.ros.clients[r.server]
        try:
            handle = await bridge_future(
                loop, client.send_goal_async(goal, feedback_callback=feedback)
            )
        except Exception as e:  # noqa: BLE001 - whatever rclpy raises, the call failed
            await self._status(call.id, Status.FAILED, f"send_goal to {r.server}: {e}")
            return
        if not handle.accepted:
            await self._status(call.id, Status.FAILED, f"goal rejected by {r.server}")
            return
        lv.handle = handle
        lv.status = Status.RUNNING
        await self._status(call.id, Status.ACCEPTED)
        await self._status(call.id, Status.RUNNING, progress=0.0)
        if lv.cancel is not None:
            handle.cancel_goal_async()
        result = await bridge_future(loop, handle.get_result_async())
        await self._finish(call.id, lv, result.status, result.result)

    def _feedback(self, call_id: str, fb: Any) -> None:
        lv = self.live.get(call_id)
        if lv is None or lv.status is not Status.RUNNING:
            return
        p, text = read_feedback(lv.route, fb)
        if p is None and text is None:
            return
        lv.progress = p if p is not None else lv.progress
        asyncio.ensure_future(self._status(call_id, Status.RUNNING, progress=p, text=text))

    async def _finish(self, call_id: str, lv: Live, goal_status: int, result: Any) -> None:
        st, reason = goal_outcome(lv.route, goal_status, result, lv.cancel)
        await self._status(call_id, st, reason, progress=1.0 if st is Status.SUCCEEDED else None)

    async def on_cancel(self, msg: protocol.CancelMsg) -> None:
        lv = self.live.get(msg.id)
        log.info("cancel %s (%s)", msg.id, msg.reason or "")
        if lv is not None:
            lv.cancel = msg.reason or "cancelled by the creature"
            if lv.handle is not None:
                lv.handle.cancel_goal_async()  # the result comes back CANCELED
            return
        known = self.log.get(msg.id)
        st, reason = cancel_answer(known, INTERRUPTED)
        if known is None:
            self.log.put(msg.id, Status.CANCELLED, reason)
        await self._status(msg.id, Status(st), reason)

    # -- the connection -----------------------------------------------------------------------
    async def _serve(self, ws: Any) -> None:
        log.info("connected to %s as %s", self.url, self.amap.body)
        self._ws = ws
        await self._announce(force=True)
        unsent, self._unsent = self._unsent, []
        for text in unsent:
            await self._send(text)
        announcer = asyncio.create_task(self._announce_loop())
        try:
            async for msg in messages_from(ws, log, logging.DEBUG):
                await self._on_message(msg)
        finally:
            announcer.cancel()
            self._ws = None

    async def _on_message(self, msg: protocol.CreatureMsg) -> None:
        if isinstance(msg, protocol.ToolCallMsg):
            await self.on_call(msg)
        elif isinstance(msg, protocol.CancelMsg):
            await self.on_cancel(msg)
        elif isinstance(msg, protocol.ErrorMsg):
            log.warning("creature says: %s", msg.error)
        else:
            log.debug("%s", msg)

    async def _announce_loop(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_EVERY_S)
            await self._announce()

    async def run(self) -> None:
        self.ros = Ros(self.amap)
        sep = "&" if "?" in self.url else "?"
        url = f"{self.url}{sep}token={self.token}&robot={self.amap.body}"
        await self._discover()
        try:
            await keep_connected(url, self._serve, self._stop, log)
        finally:
            for lv in list(self.live.values()):
                if lv.handle is not None:
                    lv.handle.cancel_goal_async()  # a body that goes away stops what it moves
            self.ros.close()

    def stop(self) -> None:
        self._stop.set()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The creature's calls as ROS 2 action goals.")
    p.add_argument("--map", required=True, help="YAML map of actions to ROS 2 action servers")
    p.add_argument("--url", default="ws://127.0.0.1:8766/robot", help="the robot channel")
    p.add_argument("--db", required=True, help="SQLite file of the call ids taken on")
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s ros2-body: %(message)s", datefmt="%H:%M:%S"
    )
    token = os.environ.get("CREATURE_ROBOT_TOKEN")
    if not token:
        print("ros2 body: no token: set CREATURE_ROBOT_TOKEN", file=sys.stderr)
        return 2
    try:
        amap = load_map(a.map)
    except MapError as e:
        print(f"ros2 body: {e}", file=sys.stderr)
        return 2
    body = Ros2Body(amap, a.url, token, a.db)
    loop = asyncio.new_event_loop()
    try:
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, body.stop)
        loop.run_until_complete(body.run())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
