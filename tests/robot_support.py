"""Scripted robots for robot-channel tests: clients written from the documented protocol
(docs/bodies.md), keeping every message they are sent."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orchestrator.runtime.brain_host import BrainHost


class Robot:
    """A scripted robot: connects under ``name``, keeps every message it is sent."""

    def __init__(self, slow: BrainHost, name: str) -> None:
        self.url = f"{slow.robot_url}?token={slow.token}&robot={name}"
        self.got: list[dict] = []
        self.ws = None
        self._reader: asyncio.Task | None = None

    async def open(self) -> Robot:
        self.ws = await connect(self.url)
        self._reader = asyncio.create_task(self._read())
        await self.next("welcome")
        await self.send({"type": "ping"})  # no hello: taken as able to do everything now
        await self.next("pong")
        return self

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.got.append(json.loads(raw))
        except ConnectionClosed:
            pass

    async def next(self, kind: str, timeout: float = 5.0, after: int = 0) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for msg in self.got[after:]:
                if msg["type"] == kind:
                    return msg
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {kind} within {timeout}s; got {self.got}")

    async def send(self, msg: dict | bytes) -> None:
        await self.ws.send(msg if isinstance(msg, bytes) else json.dumps(msg))

    async def status(self, call_id: str, status: str) -> None:
        await self.send({"type": "status", "id": call_id, "status": status})

    def ids(self) -> list[str]:
        return [m["id"] for m in self.got if m["type"] == "tool_call"]

    async def drop(self) -> None:
        """The link goes (the transport is cut, no close handshake)."""
        self.ws.transport.abort()
        await asyncio.wait_for(self.ws.wait_closed(), 5)


async def until(pred, what: str, timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def robots(slow) -> int:
    return slow.run_sync(lambda: len(slow.dispatcher.robots))


def reason(slow, call_id: str) -> str:
    return slow.run_sync(lambda: slow.outbox.get(call_id)).reason or ""
