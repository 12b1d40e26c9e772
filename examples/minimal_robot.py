"""A minimal robot for the creature (docs/bodies.md): python minimal_robot.py URL TOKEN"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect

CAN = [{"action": "gesture", "slots": {"gesture": ["wave", "nod"]}}, {"action": "look_at"}]


async def do(ws, call_id: str, args: dict) -> None:
    """Replace the sleeps with your motion; report progress as it goes."""
    for step in (0.5, 1.0):
        await asyncio.sleep(0.2)
        say = {"type": "status", "id": call_id, "status": "running", "progress": step}
        await ws.send(json.dumps({**say, "text": f"{args['action']} {step:.0%}"}))
    await ws.send(json.dumps({"type": "status", "id": call_id, "status": "succeeded"}))


async def main(url: str, token: str) -> None:
    seen, tasks = set(), {}  # a real robot keeps `seen` on disk: ids come again after reconnects
    async with connect(f"{url}?token={token}&robot=minimal") as ws:
        await ws.send(json.dumps({"type": "hello", "body": "minimal", "capabilities": CAN}))
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "tool_call" and msg["id"] not in seen:
                seen.add(msg["id"])
                await ws.send(json.dumps({"type": "status", "id": msg["id"], "status": "accepted"}))
                tasks[msg["id"]] = asyncio.create_task(do(ws, msg["id"], msg["arguments"]))
            elif msg["type"] == "cancel" and not tasks.get(msg["id"], asyncio.Future()).done():
                tasks[msg["id"]].cancel()
                await ws.send(
                    json.dumps({"type": "status", "id": msg["id"], "status": "cancelled"})
                )
            elif msg["type"] == "error":
                print("creature says:", msg["error"], file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
