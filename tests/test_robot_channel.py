"""Robot channel end to end: real WebSockets, a real SQLite outbox file, the example robot."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orchestrator.brain.tool_schema import parameters_schema
from orchestrator.brain.tools import validate_call
from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from orchestrator.runtime.robot_runner import InProcessRobot
from tests.slow_support import slow_cfg, speak, statuses, wait_until

THREE = "Sure, I'll pick up the red cup. Then I'll open the door. I'll close the window."


def start(tmp_path, hub: Bus | None = None, **over) -> tuple[BrainHost, Bus]:
    hub = hub or Bus()
    return BrainHost(slow_cfg(tmp_path, **over), hub).start(), hub


def robot(slow: BrainHost, delay: float = 0.05, **kw) -> InProcessRobot:
    return InProcessRobot(slow.robot_url, slow.token, delay, **kw).start()


def test_a_late_robot_gets_every_queued_call_in_order_exactly_once(tmp_path):
    slow, hub = start(tmp_path)
    bot = None
    try:
        speak(hub, THREE)
        wait_until(lambda: len(statuses(slow)) == 3, what="three calls in the outbox")
        assert set(statuses(slow).values()) == {"queued"}  # nobody to send them to yet
        bot = robot(slow)
        wait_until(lambda: set(statuses(slow).values()) == {"succeeded"}, what="all succeeded")
        got = [m["arguments"]["action"] for m in bot.robot.received]
        assert got == ["pick_up", "open", "close"]
        assert bot.robot.duplicates == 0
        for m in bot.robot.received:
            validate_call(m["arguments"])
            assert m["name"] == "do_physical_task"
    finally:
        if bot:
            bot.stop()
        slow.stop()
    db = sqlite3.connect(tmp_path / "outbox.sqlite3")
    rows = db.execute("SELECT id, status FROM calls ORDER BY seq").fetchall()
    assert [r[1] for r in rows] == ["succeeded"] * 3
    hist = [
        r[0]
        for r in db.execute("SELECT status FROM history WHERE id = ? ORDER BY seq", (rows[0][0],))
    ]
    assert hist == ["queued", "accepted", "running", "succeeded"]


def test_a_creature_restart_loses_no_call_and_resumes_the_lifecycle(tmp_path):
    # creature #1: one call is running on the robot, one waits for a robot that is not there
    slow, hub = start(tmp_path)
    bot = robot(slow, delay=1.0)
    speak(hub, "I'll pick up the red cup.")
    wait_until(lambda: "running" in statuses(slow).values(), what="running")
    bot.stop()
    wait_until(lambda: not slow.run_sync(lambda: slow.dispatcher.robots), what="robot gone")
    speak(hub, "I'll open the door.", 20)
    wait_until(lambda: len(statuses(slow)) == 2, what="second call stored")
    before = statuses(slow)
    slow.stop()
    assert sorted(before.values()) == ["queued", "running"]
    # creature #2 on the same file: the queued call is delivered, the running one completes
    hub2 = Bus()
    rec = hub2.subscribe("t", 1000)
    slow2, _ = start(tmp_path, hub2)
    bot2 = None
    try:
        assert statuses(slow2) == before
        bot2 = robot(slow2, delay=0.05)
        wait_until(
            lambda: (
                statuses(slow2).get([k for k, v in before.items() if v == "queued"][0])
                == "succeeded"
            ),
            what="delivered",
        )
        # the robot process restarted too: the interrupted task comes again, then the new one
        wait_until(lambda: set(statuses(slow2).values()) == {"succeeded"}, what="both done")
        assert [m["arguments"]["action"] for m in bot2.robot.received] == ["pick_up", "open"]
        resumed = [e for e in rec.drain() if e.kind == "outbox_resumed"]
        assert resumed and len(resumed[0].open) == 2
    finally:
        if bot2:
            bot2.stop()
        slow2.stop()


def test_a_robot_that_finished_while_the_creature_was_down_reports_it_after(tmp_path):
    slow, hub = start(tmp_path)
    bot = robot(slow, delay=0.6)
    speak(hub, "I'll pick up the red cup.")
    wait_until(lambda: "running" in statuses(slow).values(), what="running")
    call_id = next(iter(statuses(slow)))
    slow.stop()  # the creature goes away mid-task; the robot finishes and keeps the report
    wait_until(lambda: bot.robot.finished.get(call_id) == "succeeded", what="robot finished")
    cfg = slow_cfg(tmp_path)
    cfg.robot.port = slow.port  # same address, so the robot's reconnect finds it
    slow2 = BrainHost(cfg, Bus()).start()
    try:
        wait_until(
            lambda: statuses(slow2)[call_id] == "succeeded",
            timeout=10,
            what="status reported after the restart",
        )
        assert len(bot.robot.received) == 1  # done once; the retry only got a re-report
    finally:
        bot.stop()
        slow2.stop()


CANCEL_WITHIN_S = 10.0  # the robot's task below takes 30 s


def test_stop_cancels_the_running_task_at_once(tmp_path):
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)
    bot = robot(slow, delay=30.0)
    try:
        i = speak(hub, "Sure, I'll pick up the red cup.")
        wait_until(lambda: "running" in statuses(slow).values(), what="running")
        speak(hub, "Okay, I'll stop.", i)
        wait_until(  # a 30 s task, cancelled in well under that (even on a loaded machine)
            lambda: set(statuses(slow).values()) == {"cancelled"},
            timeout=CANCEL_WITHIN_S,
            what="the running task cancelled",
        )
        kinds = [e.kind for e in rec.drain()]
        assert "tool_cancel" in kinds
        assert kinds.count("tool_call") == 1  # stop is a cancel, not a new task
    finally:
        bot.stop()
        slow.stop()


def test_safety_gate_refuses_low_confidence_disallowed_and_too_many(tmp_path):
    slow, hub = start(
        tmp_path,
        **{
            "safety.allowed_actions": ["pick_up", "stop"],
            "safety.rate_limit_calls": 1,
            "safety.min_confidence": 0.8,
        },
    )
    rec = hub.subscribe("t", 1000)
    try:
        i = speak(hub, "I'll open the door.")  # not allowed
        i = speak(hub, "I'll pick up the cup.", i)  # allowed
        i = speak(hub, "I'll pick up the spoon.", i)  # over the rate limit
        i = speak(hub, "Let me try to grab the fork.", i)  # "try to": 0.7 < 0.8
        wait_until(lambda: len(statuses(slow)) == 4, what="four decisions")
    finally:
        slow.stop()
    reasons = [e.reason for e in rec.drain() if e.kind == "tool_rejected"]
    assert len(reasons) == 3
    assert "allowed_actions" in reasons[0] and "rate limit" in reasons[1]
    assert "min_confidence" in reasons[2]
    assert sorted(statuses_of(tmp_path)) == ["queued", "rejected", "rejected", "rejected"]


def statuses_of(tmp_path) -> list[str]:
    db = sqlite3.connect(tmp_path / "outbox.sqlite3")
    return [r[0] for r in db.execute("SELECT status FROM calls")]


def test_tools_endpoint_serves_the_schema_and_bad_input_gets_clear_errors(tmp_path):
    slow, hub = start(tmp_path)
    try:
        r = httpx.get(f"{slow.http_url}/tools")
        tools = r.json()
        assert tools[0]["type"] == "function"
        assert tools[0]["function"]["name"] == "do_physical_task"
        assert tools[0]["function"]["parameters"] == parameters_schema()
        for k in (
            "id",
            "action",
            "object",
            "destination",
            "recipient",
            "gesture",
            "utterance",
            "confidence",
            "created",
        ):
            assert k in parameters_schema()["properties"]

        async def talk():
            async with connect(f"{slow.robot_url}?token=wrong") as ws:
                err = json.loads(await ws.recv())
                assert err["type"] == "error" and "token" in err["error"]
                with pytest.raises(ConnectionClosed) as e:
                    await ws.recv()
                assert e.value.rcvd.code == 4401
            hdr = {"Authorization": f"Bearer {slow.token}"}
            async with connect(slow.robot_url, additional_headers=hdr) as ws:
                assert json.loads(await ws.recv())["type"] == "welcome"
                await ws.send("not json")
                assert "not a JSON object" in json.loads(await ws.recv())["error"]
                await ws.send(
                    json.dumps({"type": "status", "id": "call_nope", "status": "succeeded"})
                )
                assert "unknown call id" in json.loads(await ws.recv())["error"]
                await ws.send(json.dumps({"type": "dance"}))
                assert "unknown message type" in json.loads(await ws.recv())["error"]
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await ws.recv())["type"] == "pong"  # still served

        asyncio.run(talk())
        r = httpx.post(f"{slow.http_url}/calls/call_x/status", json={"status": "running"})
        assert r.status_code == 401
    finally:
        slow.stop()


class Receiver:
    """A real HTTP webhook receiver on a thread: fails the first N posts, or hangs."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0.0) -> None:
        self.posts: list[dict] = []
        self.signed: list[bool] = []
        self.secret: str | None = None
        self.fail_first = fail_first
        self.hang_s = hang_s

        async def hook(request: Request) -> JSONResponse:
            from orchestrator.runtime.webhook import verify_signature

            raw = await request.body()
            self.signed.append(
                "authorization" not in request.headers
                and verify_signature(self.secret or "", request.headers, raw)
            )
            self.posts.append(json.loads(raw))
            if self.hang_s:
                await asyncio.sleep(self.hang_s)
            if len(self.posts) <= self.fail_first:
                return JSONResponse({"error": "try again"}, status_code=503)
            return JSONResponse({"ok": True})

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="webhook receiver")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def test_webhook_retries_then_delivers_and_statuses_come_back_over_http(tmp_path):
    rx = Receiver(fail_first=2)
    slow, hub = start(tmp_path, **{"webhook.url": rx.url, "webhook.backoff_s": 0.05})
    rx.secret = slow.webhook_secret  # its own secret, made in the state dir, not the token
    assert rx.secret and rx.secret != slow.token
    rec = hub.subscribe("t", 1000)
    try:
        speak(hub, "I'll bring you the keys.")
        wait_until(lambda: any(e.kind == "webhook" for e in list(rec._items)), what="webhook")
        assert len(rx.posts) == 3 and rx.posts[-1]["type"] == "tool_call"
        assert rx.signed == [True, True, True]  # HMAC-signed, no bearer token
        call_id = rx.posts[-1]["id"]
        hdr = {"Authorization": f"Bearer {slow.token}"}
        for st in ("accepted", "running", "succeeded"):
            r = httpx.post(
                f"{slow.http_url}/calls/{call_id}/status", json={"status": st}, headers=hdr
            )
            assert r.status_code == 200, r.text
        r = httpx.post(
            f"{slow.http_url}/calls/{call_id}/status", json={"status": "flying"}, headers=hdr
        )
        assert r.status_code == 400 and "status must be one of" in r.json()["error"]
        info = httpx.get(f"{slow.http_url}/calls/{call_id}", headers=hdr).json()
        assert info["status"] == "succeeded"
        assert info["history"] == ["queued", "accepted", "running", "succeeded"]
    finally:
        slow.stop()
        rx.stop()


def test_a_call_that_waited_too_long_expires_instead_of_moving_the_robot(tmp_path):
    slow, hub = start(tmp_path, **{"outbox.max_age_s": 0.2})
    bot = None
    try:
        speak(hub, "I'll open the door.")
        wait_until(lambda: len(statuses(slow)) == 1, what="stored")
        time.sleep(0.3)
        bot = robot(slow)
        wait_until(lambda: set(statuses(slow).values()) == {"cancelled"}, what="expired")
        assert bot.robot.received == []
    finally:
        if bot:
            bot.stop()
        slow.stop()


def test_an_unacknowledged_call_is_delivered_again_with_the_same_id(tmp_path):
    slow, hub = start(tmp_path)
    url = f"{slow.robot_url}?token={slow.token}&robot=flaky"

    async def first_contact() -> dict:
        async with connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            speak(hub, "I'll close the window.")
            return json.loads(await ws.recv())  # then drop the line without acknowledging

    async def second_contact() -> dict:
        async with connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            msg = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "status", "id": msg["id"], "status": "accepted"}))
            await ws.send(json.dumps({"type": "status", "id": msg["id"], "status": "succeeded"}))
            await asyncio.sleep(0.2)
            return msg

    try:
        first = asyncio.run(first_contact())
        wait_until(lambda: not slow.run_sync(lambda: slow.dispatcher.robots), what="robot gone")
        second = asyncio.run(second_contact())
        assert first["type"] == second["type"] == "tool_call"
        assert first["id"] == second["id"]
        assert (first["attempt"], second["attempt"]) == (1, 2)
        wait_until(lambda: statuses(slow)[first["id"]] == "succeeded", what="succeeded")
    finally:
        slow.stop()
