#!/usr/bin/env python3
"""An example robot for the creature's robot channel (a FAKE arm: it only logs and waits).

It connects to ``ws://HOST:PORT/robot`` with a token, receives ``do_physical_task`` calls,
answers ``accepted`` -> ``running`` -> ``succeeded`` after a delay, honours ``cancel``, and
ignores an id it has already seen (the channel may deliver a call again after a reconnect).
Copy it as the starting point for a real robot: replace ``perform`` with your motion code.

    python examples/robot_client.py --url ws://127.0.0.1:8766/robot --token creature-dev-token
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

log = logging.getLogger("robot")
RECONNECT_S = 0.5  # first reconnect delay, doubled up to RECONNECT_MAX_S
RECONNECT_MAX_S = 5.0


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
    ) -> None:
        self.url = url
        self.token = token
        self.delay_s = delay_s
        self.name = name
        self.fail_actions = fail_actions
        self.on_call = on_call
        self.seen: set[str] = set()
        self.received: list[dict[str, Any]] = []
        self.duplicates = 0
        self.finished: dict[str, str] = {}
        self.connected = asyncio.Event()
        self._tasks: dict[str, asyncio.Task] = {}
        self._stop = asyncio.Event()
        self._ws = None
        self._unsent: list[dict[str, Any]] = []  # statuses to report again after a reconnect

    async def perform(self, args: dict[str, Any]) -> None:
        """Replace with real motion. Raise to report a failure (the message is the reason)."""
        await asyncio.sleep(self.delay_s)
        if args.get("action") in self.fail_actions:
            raise RuntimeError(f"cannot {args['action']} here")

    async def _status(self, call_id: str, status: str, reason: str | None = None) -> None:
        msg = {"type": "status", "id": call_id, "status": status}
        if reason:
            msg["reason"] = reason
        log.info("%s -> %s%s", call_id, status, f" ({reason})" if reason else "")
        if status in ("succeeded", "failed", "cancelled"):
            self.finished[call_id] = status
        try:
            await self._ws.send(json.dumps(msg))
        except ConnectionClosed:
            self._unsent.append(msg)  # reported after the reconnect: the creature's outbox waits

    async def _run_task(self, call_id: str, args: dict[str, Any]) -> None:
        await self._status(call_id, "accepted")
        await self._status(call_id, "running")
        try:
            await self.perform(args)
        except asyncio.CancelledError:
            await self._status(call_id, "cancelled", "cancelled by the creature")
            return
        except Exception as e:
            await self._status(call_id, "failed", str(e))
            return
        await self._status(call_id, "succeeded")

    async def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "tool_call":
            call_id = msg["id"]
            if self.on_call is not None:
                self.on_call(msg, time.perf_counter())
            if call_id in self.seen:
                # a retry: never do it twice, just say again where it stands
                self.duplicates += 1
                log.info("%s: already seen (attempt %s)", call_id, msg.get("attempt"))
                await self._status(call_id, self.finished.get(call_id, "running"))
                return
            self.seen.add(call_id)
            self.received.append(msg)
            args = msg.get("arguments", {})
            log.info(
                "call %s: %s %s",
                call_id,
                args.get("action"),
                {
                    k: v
                    for k, v in args.items()
                    if k in ("object", "destination", "recipient") and v
                },
            )
            self._tasks[call_id] = asyncio.create_task(self._run_task(call_id, args))
        elif kind == "cancel":
            task = self._tasks.get(msg.get("id"))
            log.info("cancel %s (%s)", msg.get("id"), msg.get("reason"))
            if task is not None and not task.done():
                task.cancel()
            elif msg.get("id") not in self.finished:
                await self._status(msg["id"], "cancelled", "cancelled before it started")
        elif kind == "error":
            log.warning("creature says: %s", msg.get("error"))
        elif kind == "welcome":
            log.info("connected (protocol %s)", msg.get("protocol"))
            unsent, self._unsent = self._unsent, []
            for status in unsent:
                await self._status(status["id"], status["status"], status.get("reason"))

    async def run(self) -> None:
        """Connect, serve, and reconnect until ``stop()``."""
        delay = RECONNECT_S
        sep = "&" if "?" in self.url else "?"
        url = f"{self.url}{sep}token={self.token}&robot={self.name}"
        while not self._stop.is_set():
            try:
                async with connect(url, open_timeout=3) as ws:
                    self._ws = ws
                    self.connected.set()
                    delay = RECONNECT_S
                    stopper = asyncio.create_task(self._stop.wait())
                    while not self._stop.is_set():
                        recv = asyncio.create_task(ws.recv())
                        done, _ = await asyncio.wait(
                            {recv, stopper}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if recv not in done:
                            recv.cancel()
                            break
                        await self._on_message(json.loads(recv.result()))
                    stopper.cancel()
            except (OSError, ConnectionClosed, InvalidStatus, asyncio.TimeoutError) as e:
                log.info("not connected (%s); retrying in %.1fs", e, delay)
            finally:
                self.connected.clear()
            if self._stop.is_set():
                break
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, RECONNECT_MAX_S)
        for task in self._tasks.values():
            task.cancel()

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    p = argparse.ArgumentParser(description="An example (fake) robot for the creature.")
    p.add_argument("--url", default="ws://127.0.0.1:8766/robot", help="the robot channel")
    p.add_argument(
        "--token", default="creature-dev-token", help="robot token (slow_loop.robot.token)"
    )
    p.add_argument("--delay", type=float, default=1.0, help="seconds each task takes")
    p.add_argument("--name", default="example-robot")
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
    robot = FakeRobot(args.url, args.token, args.delay, args.name, tuple(args.fail))
    try:
        asyncio.run(robot.run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
