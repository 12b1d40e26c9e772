#!/usr/bin/env python3
"""An example robot for the creature's robot channel (a FAKE arm: it only logs and waits).

It connects to ``ws://HOST:PORT/robot`` with a token, receives ``do_physical_task`` calls,
answers ``accepted`` -> ``running`` -> ``succeeded`` after a delay, and honours ``cancel``.
Copy it as the starting point for a real robot: replace ``perform`` with your motion code.

A robot's duties (docs/slow_loop.md, "The robot's duties"):

* delivery is at-least-once: the creature sends a call again after every reconnect until it
  hears an outcome, so a robot must **dedupe by call id**;
* the dedupe must survive the robot's own crash: this robot writes each id to a SQLite file
  (``--db``) *before* it reports ``accepted`` or moves, so a call it had started when it was
  killed is never started again; after a restart it reports that call ``failed`` ("interrupted:
  not repeated"), since only the real world knows whether the motion finished;
* a status goes over the connection the call came on (the creature refuses others);
* it says hello first (``--can ACTION`` declares what it can do, docs/bodies.md; default:
  every action) and reports ``running`` with ``progress`` as it goes.

    python examples/robot_client.py --url ws://127.0.0.1:8766/robot

It reads and writes messages with the robot side of the protocol
(``orchestrator.bodies.protocol``) and keeps its duties with ``orchestrator.bodies.duties`` (the
task log, the answers to a repeat or a cancel, the reconnects), as every body does, so it runs
where the creature is installed (``pip install -e .``); ``examples/minimal_robot.py`` needs only
``websockets``.

The token comes from ``--token``, else ``$CREATURE_ROBOT_TOKEN``, else the file the creature
made on its first run (``$XDG_STATE_HOME/creature/robot-token``, printed at start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
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
    repeat_answer,
)
from orchestrator.bodies.protocol import Status
from orchestrator.brain.robot_protocol import tool_call as tool_call_message

log = logging.getLogger("robot")
INTERRUPTED = "interrupted by a robot restart: not repeated"
STEPS = 4  # progress reports per task: 0.25, 0.5, 0.75, then the outcome
Report = Callable[[float, str], Awaitable[None]]


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or "~/.local/state").expanduser()


def default_token() -> str | None:
    """$CREATURE_ROBOT_TOKEN, else the token file the creature made on this machine."""
    if os.environ.get("CREATURE_ROBOT_TOKEN"):
        return os.environ["CREATURE_ROBOT_TOKEN"]
    path = state_home() / "creature" / "robot-token"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


class FakeRobot:
    """A fake robot body: it performs nothing, it only takes ``delay_s`` per task."""

    def __init__(
        self,
        url: str,
        token: str,
        delay_s: float = 1.0,
        name: str = "example-robot",
        fail_actions: tuple[str, ...] = (),
        on_call: Callable[[dict[str, Any], float], None] | None = None,
        db: str | Path = ":memory:",
        body: str = "example-robot",
        can: tuple[str, ...] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.delay_s = delay_s
        self.name = name
        self.fail_actions = fail_actions
        self.on_call = on_call
        self.log = TaskLog(db)
        self.received: list[dict[str, Any]] = []
        self.performed: list[str] = []  # ids whose motion ran in this process
        self.duplicates = 0
        self.finished: dict[str, str] = {}
        self.body = body
        # what its hello declares (docs/bodies.md); None: every action
        self.capabilities = None if can is None else [protocol.Capability(a) for a in can]
        self.connected = asyncio.Event()  # set once the creature answered the hello
        self.progress: list[tuple[str, float]] = []  # (id, progress) reported
        self._tasks: dict[str, asyncio.Task] = {}
        self._stop = asyncio.Event()
        self._ws = None
        self._unsent: list[dict[str, Any]] = []  # statuses to report again after a reconnect

    async def perform(self, args: dict[str, Any], report: Report) -> None:
        """Replace with real motion; ``await report(0.5, "lifting")`` as it goes. Raise to
        report a failure (the message is the reason)."""
        steps = STEPS if self.delay_s > 0 else 1  # an instant task has no progress to tell
        for step in range(1, steps + 1):
            await asyncio.sleep(self.delay_s / steps)
            if step < steps:
                await report(step / steps, f"{args.get('action')}: step {step} of {steps}")
        if args.get("action") in self.fail_actions:
            raise RuntimeError(f"cannot {args['action']} here")

    async def _status(self, call_id: str, status: str, reason: str | None = None) -> None:
        msg = protocol.status(call_id, status, reason)
        log.info("%s -> %s%s", call_id, status, f" ({reason})" if reason else "")
        if ended(status):
            self.finished[call_id] = status
        self.log.put(call_id, status, reason)
        try:
            await self._ws.send(json.dumps(msg))
        except ConnectionClosed:
            self._unsent.append(msg)  # reported after the reconnect: the creature's outbox waits

    async def _progress(self, call_id: str, progress: float, text: str) -> None:
        """``running`` with how far along it is; lost with the link (the next one says more)."""
        self.progress.append((call_id, progress))
        try:
            await self._ws.send(
                json.dumps(protocol.status(call_id, "running", None, progress, text))
            )
        except ConnectionClosed:
            pass

    async def _run_task(self, call_id: str, args: dict[str, Any]) -> None:
        await self._status(call_id, Status.ACCEPTED.value)
        await self._status(call_id, Status.RUNNING.value)
        self.performed.append(call_id)
        try:
            await self.perform(args, lambda p, text: self._progress(call_id, p, text))
        except asyncio.CancelledError:
            await self._status(call_id, Status.CANCELLED.value, "cancelled by the creature")
            return
        except Exception as e:
            await self._status(call_id, Status.FAILED.value, str(e))
            return
        await self._status(call_id, Status.SUCCEEDED.value)

    async def _on_message(self, msg: protocol.CreatureMsg) -> None:
        if isinstance(msg, protocol.ToolCallMsg):
            await self._on_call(msg)
        elif isinstance(msg, protocol.CancelMsg):
            await self._on_cancel(msg)
        elif isinstance(msg, protocol.ErrorMsg):
            log.warning("creature says: %s (%s)", msg.error, msg.code)
        elif isinstance(msg, protocol.ReadyMsg):
            log.info("ready as %s (%s)", msg.robot, ", ".join(msg.actions or ["every action"]))
            self.connected.set()
        elif isinstance(msg, protocol.WelcomeMsg):
            log.info("connected (protocol %s)", msg.protocol)
            unsent, self._unsent = self._unsent, []
            for status in unsent:
                await self._status(status["id"], status["status"], status.get("reason"))

    async def _on_call(self, msg: protocol.ToolCallMsg) -> None:
        call_id = msg.id
        if self.on_call is not None:
            self.on_call(tool_call_message(msg.id, msg.arguments, msg.attempt), time.perf_counter())
        known = self.log.get(call_id)
        if known is not None:
            # a retry: never do it twice, just say again where it stands
            self.duplicates += 1
            log.info("%s: already seen (attempt %s)", call_id, msg.attempt)
            live = self._tasks.get(call_id)
            alive = live is not None and not live.done()
            await self._status(call_id, *repeat_answer(known, alive, INTERRUPTED))
            return
        self.log.put(call_id, Status.ACCEPTED)  # committed before anything moves
        self.received.append(tool_call_message(msg.id, msg.arguments, msg.attempt))
        args = msg.arguments
        log.info(
            "call %s: %s %s",
            call_id,
            args.get("action"),
            {
                k: v
                for k, v in args.items()
                if k not in ("id", "action", "utterance", "confidence", "created") and v
            },
        )
        self._tasks[call_id] = asyncio.create_task(self._run_task(call_id, args))

    async def _on_cancel(self, msg: protocol.CancelMsg) -> None:
        task = self._tasks.get(msg.id)
        log.info("cancel %s (%s)", msg.id, msg.reason)
        if task is not None and not task.done():
            task.cancel()
            return
        await self._status(msg.id, *cancel_answer(self.log.get(msg.id), INTERRUPTED))

    async def _serve(self, ws: Any) -> None:
        """One connection: say hello, then answer what the creature sends."""
        self._ws = ws
        try:
            await ws.send(json.dumps(protocol.hello(self.body, self.capabilities)))
            async for msg in messages_from(ws, log):
                await self._on_message(msg)
        finally:
            self.connected.clear()

    async def run(self) -> None:
        """Connect, serve, and reconnect until ``stop()``."""
        sep = "&" if "?" in self.url else "?"
        url = f"{self.url}{sep}token={self.token}&robot={self.name}"
        await keep_connected(url, self._serve, self._stop, log)
        for task in self._tasks.values():
            task.cancel()
        # each cancelled task writes its end to the task log: close it only after they have
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self.log.close()

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    p = argparse.ArgumentParser(description="An example (fake) robot for the creature.")
    p.add_argument("--url", default="ws://127.0.0.1:8766/robot", help="the robot channel")
    p.add_argument(
        "--token",
        default=None,
        help="robot token (default: $CREATURE_ROBOT_TOKEN, else the creature's token file "
        "$XDG_STATE_HOME/creature/robot-token on this machine)",
    )
    p.add_argument(
        "--db",
        default=str(state_home() / "creature-robot" / "tasks.sqlite3"),
        help="SQLite file of the call ids this robot has taken on (survives its crashes)",
    )
    p.add_argument("--delay", type=float, default=1.0, help="seconds each task takes")
    p.add_argument("--name", default="example-robot", help="this robot's identity (?robot=)")
    p.add_argument(
        "--can",
        action="append",
        default=None,
        metavar="ACTION",
        help="declare this action in the hello (repeatable); default: every action",
    )
    p.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="ACTION",
        help="report failure for this action (repeatable), to see the sad face",
    )
    args = p.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s robot: %(message)s", datefmt="%H:%M:%S"
    )
    token = args.token or default_token()
    if not token:
        p.error("no token: give --token, set CREATURE_ROBOT_TOKEN, or start the creature first")
    robot = FakeRobot(
        args.url,
        token,
        args.delay,
        args.name,
        tuple(args.fail),
        db=args.db,
        can=None if args.can is None else tuple(args.can),
    )
    try:
        asyncio.run(robot.run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
