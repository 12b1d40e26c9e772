"""Attacks on the robot channel, as tests: a second robot, a foreign Origin, a status from a
connection the call was never sent to, nested JSON, huge ids, a robot killed mid-task.
Real WebSockets, a real SQLite outbox, the example robot as a real separate process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from tests.conftest import ROOT
from tests.slow_support import slow_cfg, speak, statuses, wait_until


def start(tmp_path, **over) -> tuple[BrainHost, Bus]:
    hub = Bus()
    return BrainHost(slow_cfg(tmp_path, **over), hub, state=tmp_path).start(), hub


def kinds(sub) -> list:
    return [e for e in list(sub._items)]


async def welcome(url: str, **kw):
    ws = await connect(url, **kw)
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def next_of(ws, kind: str) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["type"] == kind:
            return msg


def test_no_fixed_token_one_is_made_once_and_kept_private(tmp_path):
    slow, _ = start(tmp_path)
    try:
        token_file = tmp_path / "robot-token"
        assert slow.token == token_file.read_text().strip() and len(slow.token) >= 16
        assert token_file.stat().st_mode & 0o077 == 0
        assert "creature-dev-token" not in slow.token
        assert str(token_file) in slow.robot_hint() and slow.token not in slow.robot_hint()
    finally:
        slow.stop()
    again = BrainHost(slow_cfg(tmp_path), Bus(), state=tmp_path)
    assert again.token == slow.token  # the robot's configured token keeps working


def test_a_second_robot_with_the_same_name_is_refused_and_recorded(tmp_path):
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)
    url = f"{slow.robot_url}?token={slow.token}&robot=arm"

    async def attack() -> tuple[dict, int, dict]:
        real = await welcome(url)
        imposter = await connect(url)
        err = json.loads(await imposter.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await imposter.recv()
        speak(hub, "I'll open the door.")
        call = await next_of(real, "tool_call")  # the real robot still gets the call
        await real.close()
        return err, closed.value.rcvd.code, call

    try:
        err, code, call = asyncio.run(attack())
        assert code == 4410 and "already connected" in err["error"]
        assert call["arguments"]["action"] == "open"
        refused = [e for e in kinds(rec) if e.kind == "robot_refused"]
        assert len(refused) == 1 and refused[0].robot == "arm"
        assert "already connected" in refused[0].reason
    finally:
        slow.stop()


def test_take_over_closes_the_old_connection_with_a_recorded_event(tmp_path):
    slow, hub = start(tmp_path, **{"robot.on_duplicate": "take_over"})
    rec = hub.subscribe("t", 1000)
    url = f"{slow.robot_url}?token={slow.token}&robot=arm"

    async def take_over() -> tuple[int, dict]:
        old = await welcome(url)
        new = await welcome(url)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(old.recv(), 5)
        speak(hub, "I'll open the door.")
        call = await next_of(new, "tool_call")
        await new.close()
        return closed.value.rcvd.code, call

    try:
        code, call = asyncio.run(take_over())
        assert code == 4409 and call["type"] == "tool_call"
        replaced = [e for e in kinds(rec) if e.kind == "robot_replaced"]
        assert len(replaced) == 1 and replaced[0].robot == "arm"
    finally:
        slow.stop()


def test_a_status_from_another_connection_is_refused(tmp_path):
    slow, hub = start(tmp_path)
    base = f"{slow.robot_url}?token={slow.token}&robot="

    async def attack() -> dict:
        arm = await welcome(base + "arm")
        speak(hub, "I'll open the door.")
        call = await next_of(arm, "tool_call")
        other = await welcome(base + "other")
        await other.send(json.dumps({"type": "status", "id": call["id"], "status": "failed"}))
        err = await next_of(other, "error")
        await arm.close()
        await other.close()
        return {"call": call, "err": err}

    try:
        got = asyncio.run(attack())
        assert got["err"]["code"] == "not_yours"
        assert statuses(slow)[got["call"]["id"]] == "sent"  # unchanged
    finally:
        slow.stop()


def test_a_foreign_origin_cannot_open_the_robot_socket(tmp_path):
    slow, _ = start(tmp_path, **{"robot.allowed_origins": ["https://console.example"]})
    url = f"{slow.robot_url}?token={slow.token}&robot=arm"

    async def attack() -> None:
        with pytest.raises(InvalidStatus) as e:
            await connect(url, origin="http://evil.example")
        assert e.value.response.status_code == 403
        ws = await welcome(url, origin="https://console.example")  # on the allow-list
        await ws.close()
        ws = await welcome(url)  # a robot: no Origin header at all
        await ws.close()

    try:
        asyncio.run(attack())
    finally:
        slow.stop()


def test_an_http_status_for_a_call_never_delivered_is_refused(tmp_path):
    slow, hub = start(tmp_path)
    rec = hub.subscribe("t", 1000)
    try:
        speak(hub, "I'll open the door.")
        wait_until(lambda: len(statuses(slow)) == 1, what="queued")
        (call_id,) = statuses(slow)
        hdr = {"Authorization": f"Bearer {slow.token}"}
        r = httpx.post(
            f"{slow.http_url}/calls/{call_id}/status", json={"status": "succeeded"}, headers=hdr
        )
        assert r.status_code == 403 and r.json()["code"] == "not_yours"
        assert statuses(slow)[call_id] == "queued"
        wait_until(lambda: any(e.kind == "tool_status_refused" for e in kinds(rec)), what="rec")
    finally:
        slow.stop()


def test_nested_json_and_huge_ids_get_short_error_replies(tmp_path):
    slow, _ = start(tmp_path)
    url = f"{slow.robot_url}?token={slow.token}&robot=arm"

    async def attack() -> list:
        ws = await welcome(url)
        out = []
        await ws.send("[" * 60_000)  # deep, under the 64 KiB message cap
        out.append(await next_of(ws, "error"))
        await ws.send(json.dumps({"type": "status", "id": "x" * 50_000, "status": "running"}))
        out.append(await next_of(ws, "error"))
        await ws.send(
            json.dumps({"a": "[" * 20 + "1" + "]" * 20}).replace('"[', "[").replace(']"', "]")
        )
        out.append(await next_of(ws, "error"))
        await ws.send(json.dumps({"type": "ping"}))
        out.append(await next_of(ws, "pong"))  # still served
        await ws.send("x" * 200_000)  # over the cap: closed with 1009, nothing parsed
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(ws.recv(), 5)
        out.append(e.value.rcvd.code)
        return out

    try:
        deep, long_id, deep2, pong, code = asyncio.run(attack())
        assert deep["code"] in ("too_deep", "bad_json")
        assert long_id["code"] == "bad_id" and len(json.dumps(long_id)) < 300
        assert deep2["code"] == "too_deep"
        assert pong["type"] == "pong" and code == 1009
        hdr = {"Authorization": f"Bearer {slow.token}"}
        r = httpx.post(f"{slow.http_url}/calls/call_x/status", content="[" * 100_000, headers=hdr)
        assert r.status_code == 413
        r = httpx.post(f"{slow.http_url}/calls/call_x/status", content="[" * 5000, headers=hdr)
        assert r.status_code == 400 and "nested deeper" in r.json()["error"]
        r = httpx.post(f"{slow.http_url}/calls/{'y' * 5000}/status", json={}, headers=hdr)
        assert r.status_code == 400 and len(r.text) < 300
        assert httpx.get(f"{slow.http_url}/health").json()["ok"] is True
    finally:
        slow.stop()


def robot_process(url: str, token: str, db, delay: float) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "examples" / "robot_client.py"), "--url", url]
    cmd += ["--token", token, "--db", str(db), "--delay", str(delay), "--name", "arm"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)


def test_a_robot_killed_mid_task_never_runs_it_twice(tmp_path):
    """kill -9 of the example robot while it is at work; restarted, it gets the call again
    (at-least-once) and, from its own SQLite task log, does not start it again."""
    slow, hub = start(tmp_path)
    db = tmp_path / "robot-tasks.sqlite3"
    first = second = None
    try:
        first = robot_process(slow.robot_url, slow.token, db, delay=60)
        wait_until(lambda: slow.run_sync(lambda: len(slow.dispatcher.robots)) == 1, 15, "robot")
        speak(hub, "I'll open the door.")
        wait_until(lambda: "running" in statuses(slow).values(), 10, "running")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        wait_until(lambda: slow.run_sync(lambda: len(slow.dispatcher.robots)) == 0, 10, "gone")
        second = robot_process(slow.robot_url, slow.token, db, delay=60)
        wait_until(lambda: set(statuses(slow).values()) == {"failed"}, 15, "outcome")
        (call_id,) = statuses(slow)
        call = slow.run_sync(lambda: slow.outbox.get(call_id))
        assert "not repeated" in call.reason
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)
        slow.stop()
    logs = first.stderr.read() + second.stderr.read()
    assert logs.count(f"call {call_id}: open") == 1, logs  # started once, in the first process
    assert f"{call_id}: already seen" in logs


def test_the_webhook_is_signed_with_its_own_secret(tmp_path):
    from orchestrator.runtime.webhook import sign, verify_signature

    body = b'{"id":"call_1"}'
    ts = str(int(time.time()))
    headers = {"X-Creature-Timestamp": ts, "X-Creature-Signature": sign("s" * 20, ts, body)}
    assert verify_signature("s" * 20, headers, body)
    assert not verify_signature("t" * 20, headers, body)
    assert not verify_signature("s" * 20, headers, body + b" ")
    assert not verify_signature("s" * 20, headers, body, now=time.time() + 3600)  # replayed
