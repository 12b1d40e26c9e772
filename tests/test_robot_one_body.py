"""One task, one body, as attacks on the robot channel: a call a robot took never goes to
another robot, whatever happens to the first one's link (a drop, a binary frame, a restart of
the creature). Real WebSockets to the real channel, a real SQLite outbox; the robots are
scripted clients of the documented protocol (docs/bodies.md)."""

from __future__ import annotations

import asyncio

from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from tests.robot_support import Robot, reason, robots, until
from tests.slow_support import slow_cfg, speak, statuses


def start(tmp_path, **over) -> tuple[BrainHost, Bus]:
    hub = Bus()
    return BrainHost(slow_cfg(tmp_path, **over), hub, state=tmp_path).start(), hub


def test_a_running_call_is_never_sent_to_another_robot_when_its_link_drops(tmp_path):
    slow, hub = start(tmp_path, **{"robot.reclaim_s": 1.0})

    async def attack() -> tuple[str, Robot]:
        a = await Robot(slow, "arm-a").open()
        speak(hub, "I'll pick up the red cup.")
        call = await a.next("tool_call")
        await a.status(call["id"], "accepted")
        await a.status(call["id"], "running")
        await until(lambda: statuses(slow)[call["id"]] == "running", "running")
        b = await Robot(slow, "arm-b").open()
        await a.drop()
        await until(lambda: robots(slow) == 1, "a gone")
        await until(lambda: statuses(slow)[call["id"]] == "failed", "robot lost")
        await b.send({"type": "ping"})  # b is still served, and was never handed the call
        await b.next("pong", after=len(b.got))
        return call["id"], b

    try:
        call_id, b = asyncio.run(attack())
        assert call_id not in b.ids()
        assert reason(slow, call_id).startswith("robot lost: arm-a did not come back")
    finally:
        slow.stop()


def test_the_same_robot_back_within_reclaim_gets_its_call_again_and_finishes_it(tmp_path):
    slow, hub = start(tmp_path, **{"robot.reclaim_s": 30.0})

    async def attack() -> tuple[dict, dict, Robot]:
        a = await Robot(slow, "arm-a").open()
        speak(hub, "I'll pick up the red cup.")
        call = await a.next("tool_call")
        await a.status(call["id"], "accepted")
        b = await Robot(slow, "arm-b").open()
        await a.drop()
        await until(lambda: robots(slow) == 1, "a gone")
        again = await Robot(slow, "arm-a").open()
        resent = await again.next("tool_call")
        await again.status(resent["id"], "succeeded")
        await until(lambda: statuses(slow)[call["id"]] == "succeeded", "done")
        return call, resent, b

    try:
        call, resent, b = asyncio.run(attack())
        assert resent["id"] == call["id"] and resent["attempt"] == 2
        assert b.ids() == []
    finally:
        slow.stop()


def test_a_binary_frame_gets_an_error_and_the_link_keeps_its_calls(tmp_path):
    slow, hub = start(tmp_path)

    async def attack() -> tuple[dict, str, Robot]:
        a = await Robot(slow, "arm-a").open()
        speak(hub, "I'll pick up the red cup.")
        call = await a.next("tool_call")
        await a.status(call["id"], "accepted")
        b = await Robot(slow, "arm-b").open()
        await a.send(b"\x00\x01binary")
        err = await a.next("error")
        await a.status(call["id"], "succeeded")  # same link, still its call
        await until(lambda: statuses(slow)[call["id"]] == "succeeded", "done")
        return err, call["id"], b

    try:
        err, call_id, b = asyncio.run(attack())
        assert err["code"] == "binary"
        assert robots(slow) == 2 and call_id not in b.ids()
    finally:
        slow.stop()


def test_after_a_creature_restart_a_call_waits_for_its_own_robot_not_the_first_one_back(
    tmp_path,
):
    slow, hub = start(tmp_path)

    async def first_run() -> str:
        a = await Robot(slow, "arm-a").open()
        speak(hub, "I'll pick up the red cup.")
        call = await a.next("tool_call")
        await a.status(call["id"], "running")
        await until(lambda: statuses(slow)[call["id"]] == "running", "running")
        return call["id"]

    call_id = asyncio.run(first_run())
    slow.stop()  # the creature crashes mid-task; arm-a's link goes with it
    slow2, _ = start(tmp_path)

    async def second_run() -> tuple[Robot, dict]:
        b = await Robot(slow2, "arm-b").open()  # a stranger is back first
        a = await Robot(slow2, "arm-a").open()
        resent = await a.next("tool_call")
        await a.status(resent["id"], "succeeded")
        await until(lambda: statuses(slow2)[call_id] == "succeeded", "done")
        return b, resent

    try:
        b, resent = asyncio.run(second_run())
        assert resent["id"] == call_id and call_id not in b.ids()
    finally:
        slow2.stop()
