"""The capability handshake and progress, end to end on the real robot channel: a body's
hello routes each call to a body that can do it, a call no connected body can do is refused
(recorded, a "can't" look, never queued), /tools narrows to the connected bodies, a bad hello
is refused in one line, `running` progress reaches the record and /metrics, and the minimal
robot of docs/bodies.md runs as written. Robots: scripted protocol clients, the example robot
in-process and the minimal robot as a real separate process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from orchestrator.runtime.metrics import CreatureMetrics
from orchestrator.runtime.robot_runner import InProcessRobot
from tests.conftest import ROOT
from tests.robot_support import Robot, until
from tests.slow_support import slow_cfg, speak, statuses, wait_until

HEAD = [{"action": "gesture", "slots": {"gesture": ["wave", "nod"]}}, {"action": "look_at"}]
ARM = [{"action": "pick_up"}]


def start(tmp_path, **over) -> tuple[BrainHost, Bus]:
    hub = Bus()
    return BrainHost(slow_cfg(tmp_path, **over), hub, state=tmp_path).start(), hub


async def body(slow: BrainHost, name: str, caps: list | None, kind: str = "test-body") -> Robot:
    """A robot that says hello, and is ready once the creature answers it."""
    r = Robot(slow, name)
    r.ws = await connect(r.url)
    r._reader = asyncio.create_task(r._read())
    hello = {"type": "hello", "body": kind}
    if caps is not None:
        hello["capabilities"] = caps
    await r.send(hello)
    await r.next("ready")
    return r


def events(sub, kind: str) -> list:
    return [e for e in list(sub._items) if e.kind == kind]


def test_each_call_goes_to_a_body_that_can_do_it(tmp_path):
    slow, hub = start(tmp_path)

    async def scene() -> tuple[Robot, Robot, dict]:
        arm = await body(slow, "arm", ARM, "arm")
        head = await body(slow, "head", HEAD, "reachy-mini")  # newest: gets what it can do
        i = speak(hub, "I'll pick up the red cup.")
        speak(hub, "Sure, I'll wave.", i + 10)
        await arm.next("tool_call")
        await head.next("tool_call")
        ready = next(m for m in head.got if m["type"] == "ready")
        return arm, head, ready

    try:
        arm, head, ready = asyncio.run(scene())
        got = {m["arguments"]["action"] for m in arm.got if m["type"] == "tool_call"}
        assert got == {"pick_up"}
        got = [m["arguments"] for m in head.got if m["type"] == "tool_call"]
        assert [(a["action"], a["gesture"]) for a in got] == [("gesture", "wave")]
        assert ready == {
            "type": "ready", "robot": "head", "body": "reachy-mini",
            "actions": ["gesture", "look_at"],
        }  # fmt: skip
        health = httpx.get(f"{slow.http_url}/health").json()
        assert {b["robot"]: b["actions"] for b in health["bodies"]} == {
            "arm": ["pick_up"],
            "head": ["gesture", "look_at"],
        }
    finally:
        slow.stop()


def test_a_call_no_connected_body_can_do_is_refused_recorded_and_never_queued(tmp_path):
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)

    async def scene() -> Robot:
        head = await body(slow, "head", HEAD, "reachy-mini")
        speak(hub, "I'll pick up the red cup.")
        i = speak(hub, "Okay, I'll dance.", 20)  # a gesture, but not one this head declared
        await until(lambda: len(statuses(slow)) == 2, "two refusals")
        speak(hub, "Let me look at the door.", i + 10)  # and one it can do
        await head.next("tool_call")
        return head

    try:
        head = asyncio.run(scene())
        rejected = events(rec, "tool_rejected")
        assert [(e.action, e.code) for e in rejected] == [
            ("pick_up", "no_capable_robot"),
            ("gesture", "no_capable_robot"),
        ]
        assert "no connected body can do pick_up object=red cup" in rejected[0].reason
        assert "head (reachy-mini): gesture, look_at" in rejected[0].reason
        assert sorted(statuses(slow).values()) == ["rejected", "rejected", "sent"]
        looks = [e for e in events(rec, "affect") if e.cause == "tool_cannot"]
        assert looks and looks[0].mood == "unable"
        assert [m["arguments"]["action"] for m in head.got if m["type"] == "tool_call"] == [
            "look_at"
        ]
    finally:
        slow.stop()


def test_tools_are_narrowed_to_the_connected_bodies_and_full_on_request(tmp_path):
    slow, _ = start(tmp_path)

    def action_enum(url: str) -> tuple[list, list]:
        (tool,) = httpx.get(url).json()
        props = tool["function"]["parameters"]["properties"]
        return props["action"]["enum"], props["gesture"]["enum"]

    async def scene() -> dict:
        out = {"none": action_enum(f"{slow.http_url}/tools")}
        head = await body(slow, "head", HEAD)
        out["head"] = action_enum(f"{slow.http_url}/tools")
        out["full"] = action_enum(f"{slow.http_url}/tools?full=1")
        await Robot(slow, "legacy").open()  # declares nothing: can do everything
        out["legacy"] = action_enum(f"{slow.http_url}/tools")
        await head.ws.close()
        return out

    try:
        got = asyncio.run(scene())
        assert got["head"] == (["look_at", "gesture"], ["wave", "nod", None])
        assert got["full"] == got["none"] == got["legacy"]
        assert "pick_up" in got["full"][0] and "dance" in got["full"][1]
    finally:
        slow.stop()


@pytest.mark.parametrize(
    "caps, says",
    [
        ([{"action": "juggle"}], "unknown action 'juggle'"),
        ([{"action": "look_at", "slots": {"gesture": ["nod"]}}], "look_at has no slot 'gesture'"),
        ([{"action": "gesture", "slots": {"gesture": ["moonwalk"]}}], "'moonwalk' is not a value"),
        ("all of them", "'capabilities' must be a list"),
    ],
)
def test_a_bad_hello_is_refused_in_one_line_and_recorded(tmp_path, caps, says):
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)
    url = f"{slow.robot_url}?token={slow.token}&robot=bad"

    async def attack() -> tuple[list, int]:
        got = []
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "hello", "capabilities": caps}))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        return got, closed.value.rcvd.code

    try:
        got, code = asyncio.run(attack())
        err = got[-1]
        assert code == 4400 and err["code"] == "bad_hello" and says in err["error"]
        assert "\n" not in err["error"] and len(err["error"]) < 300
        wait_until(lambda: events(rec, "robot_refused"), what="recorded")
        assert slow.run_sync(lambda: len(slow.dispatcher.robots)) == 0
    finally:
        slow.stop()


def test_running_progress_reaches_the_record_and_metrics_from_the_example_robot(tmp_path):
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)
    bot = InProcessRobot(slow.robot_url, slow.token, 0.4, can=("pick_up", "open")).start()
    try:
        speak(hub, "I'll pick up the red cup.")
        wait_until(lambda: set(statuses(slow).values()) == {"succeeded"}, what="done")
        progress = events(rec, "tool_progress")
        assert [(e.action, e.progress) for e in progress] == [
            ("pick_up", 0.25),
            ("pick_up", 0.5),
            ("pick_up", 0.75),
        ]
        assert progress[0].text == "pick_up: step 1 of 4" and progress[0].source == "example-robot"
        metrics = CreatureMetrics()
        for e in list(rec._items):
            metrics.observe(e)
        text = metrics.exposition().decode()
        assert 'creature_call_progress{action="pick_up"} 0.75' in text
        assert 'creature_call_progress_reports_total{action="pick_up"} 3.0' in text
        (connected,) = events(rec, "robot_connected")
        assert connected.body == "example-robot" and connected.actions == ["pick_up", "open"]
    finally:
        bot.stop()
        slow.stop()


def test_the_minimal_robot_of_the_docs_runs_as_written(tmp_path):
    source = (ROOT / "examples" / "minimal_robot.py").read_text()
    assert source.strip() in (ROOT / "docs" / "bodies.md").read_text()  # the doc shows it all
    assert len(source.splitlines()) <= 45
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "minimal_robot.py"), slow.robot_url, slow.token],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: slow.run_sync(lambda: len(slow.dispatcher.robots)) == 1, 15, "connected")
        speak(hub, "Sure, I'll wave.")
        wait_until(lambda: set(statuses(slow).values()) == {"succeeded"}, 10, "done")
        assert [e.progress for e in events(rec, "tool_progress")] == [0.5, 1.0]
        (connected,) = events(rec, "robot_connected")
        assert connected.robot == "minimal" and connected.actions == ["gesture", "look_at"]
    finally:
        proc.terminate()
        proc.wait(10)
        slow.stop()


def test_a_robot_that_says_nothing_gets_every_call_after_the_hello_wait(tmp_path):
    slow, hub = start(tmp_path, **{"robot.hello_wait_s": 1.0})
    rec = hub.subscribe("t", 1000)
    url = f"{slow.robot_url}?token={slow.token}&robot=quiet"

    async def quiet() -> dict:
        async with connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            speak(hub, "I'll pick up the red cup.")  # no robot is ready yet: it waits
            return json.loads(await asyncio.wait_for(ws.recv(), 5))

    try:
        call = asyncio.run(quiet())
        assert call["type"] == "tool_call" and call["arguments"]["action"] == "pick_up"
        (sent,) = events(rec, "tool_call")
        assert sent.robot is None  # made while no robot was ready, delivered once it was
        (connected,) = events(rec, "robot_connected")
        assert connected.robot == "quiet" and connected.actions is None  # can do everything
    finally:
        slow.stop()
