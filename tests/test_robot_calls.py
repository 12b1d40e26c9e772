"""A call's clock and its operator: a call nobody took expires within seconds, a robot that
does not acknowledge fails its call, one creature owns an outbox, and `creature calls` lists
and cancels (also while the creature runs, through the outbox). Real WebSockets, a real
SQLite outbox, the real CLI in a subprocess; the robots are scripted protocol clients."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from orchestrator.brain.outbox import OutboxError, OutboxLock
from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from tests.conftest import creature
from tests.robot_support import Robot, reason, until
from tests.slow_support import slow_cfg, speak, statuses, wait_until


def start(tmp_path, **over) -> tuple[BrainHost, Bus]:
    hub = Bus()
    return BrainHost(slow_cfg(tmp_path, **over), hub, state=tmp_path).start(), hub


def cli(tmp_path, *args: str):
    return creature(
        "calls", *args, "--set", f"slow_loop.outbox.path={tmp_path / 'outbox.sqlite3'}", timeout=60
    )


def test_a_call_no_robot_took_expires_within_seconds_and_never_starts_a_later_robot(tmp_path):
    slow, hub = start(tmp_path, **{"outbox.queued_max_age_s": 0.5})

    async def late_robot() -> Robot:
        r = await Robot(slow, "arm").open()
        await asyncio.sleep(0.3)  # a flush would have sent it by now
        return r

    try:
        speak(hub, "I'll pick up the red cup.")
        wait_until(lambda: set(statuses(slow).values()) == {"cancelled"}, 5, "expired")
        (call_id,) = statuses(slow)
        assert reason(slow, call_id).startswith("expired: no robot within 0.5s")
        assert asyncio.run(late_robot()).ids() == []
    finally:
        slow.stop()


def test_a_restart_within_the_window_still_delivers_the_queued_call(tmp_path):
    slow, hub = start(tmp_path, **{"outbox.queued_max_age_s": 30})
    speak(hub, "I'll pick up the red cup.")
    wait_until(lambda: len(statuses(slow)) == 1, what="queued")
    slow.stop()
    slow2, _ = start(tmp_path, **{"outbox.queued_max_age_s": 30})

    async def robot() -> dict:
        r = await Robot(slow2, "arm").open()
        return await r.next("tool_call")

    try:
        assert asyncio.run(robot())["arguments"]["action"] == "pick_up"
    finally:
        slow2.stop()


def test_a_robot_that_does_not_acknowledge_fails_the_call_and_is_sent_a_cancel(tmp_path):
    slow, hub = start(tmp_path, **{"robot.ack_timeout_s": 0.4})

    async def deaf() -> tuple[dict, dict]:
        r = await Robot(slow, "arm").open()
        speak(hub, "I'll pick up the red cup.")
        call = await r.next("tool_call")  # ... and never a word back
        return call, await r.next("cancel")

    try:
        call, cancel = asyncio.run(deaf())
        assert cancel["id"] == call["id"]
        assert statuses(slow)[call["id"]] == "failed"
        assert reason(slow, call["id"]).startswith("not acknowledged by arm within 0.4s")
    finally:
        slow.stop()


def test_a_second_creature_on_the_same_outbox_is_refused_in_one_line(tmp_path):
    slow, _ = start(tmp_path)
    try:
        with pytest.raises(OutboxError, match="in use by another creature process"):
            BrainHost(slow_cfg(tmp_path), Bus(), state=tmp_path).start()
    finally:
        slow.stop()
    again, _ = start(tmp_path)  # the first one gone, its outbox is free
    again.stop()
    # the real CLI, while this process owns the outbox
    lock = OutboxLock(tmp_path / "outbox.sqlite3")
    assert lock.acquire()
    try:
        r = creature(
            "demo", "--once", "--no-face", "--set", "slow_loop.robot.port=0",
            "--set", f"slow_loop.outbox.path={tmp_path / 'outbox.sqlite3'}", timeout=120,
        )  # fmt: skip
    finally:
        lock.release()
    assert r.returncode == 2, r.stderr
    assert "in use by another creature process" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_calls_cancel_while_the_creature_runs_sends_the_robot_a_cancel(tmp_path):
    slow, hub = start(tmp_path)
    listed: dict = {}

    async def operator() -> tuple[dict, dict]:
        r = await Robot(slow, "arm").open()
        speak(hub, "I'll pick up the red cup.")
        call = await r.next("tool_call")
        await r.status(call["id"], "running")
        await until(lambda: statuses(slow)[call["id"]] == "running", "running")
        done = threading.Event()

        def run_cli() -> None:
            listed["list"] = cli(tmp_path, "list")
            listed["cancel"] = cli(tmp_path, "cancel", call["id"])
            done.set()

        threading.Thread(target=run_cli, daemon=True).start()
        cancel = await r.next("cancel", timeout=60)
        await r.status(call["id"], "cancelled")
        await until(done.is_set, "cli", 60)
        return call, cancel

    try:
        call, cancel = asyncio.run(operator())
        assert cancel["id"] == call["id"]
        assert statuses(slow)[call["id"]] == "cancelled"
        assert listed["list"].returncode == 0 and call["id"] in listed["list"].stdout
        assert "running" in listed["list"].stdout and "arm" in listed["list"].stdout
        assert listed["cancel"].returncode == 0, listed["cancel"].stderr
        assert "taken by the running creature" in listed["cancel"].stderr
    finally:
        slow.stop()


def test_calls_cancel_all_with_no_creature_running_and_a_bad_id_in_one_line(tmp_path):
    slow, hub = start(tmp_path, **{"outbox.queued_max_age_s": 300})
    speak(hub, "I'll pick up the red cup.")
    wait_until(lambda: len(statuses(slow)) == 1, what="queued")
    (call_id,) = statuses(slow)
    slow.stop()
    r = cli(tmp_path, "cancel-all")
    assert r.returncode == 0, r.stderr
    assert f"{call_id}: cancelled" in r.stdout and "no creature running" in r.stderr
    r = cli(tmp_path, "list", "--all", "--json")
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["status"] == "cancelled" and "operator" in row["reason"]
    assert cli(tmp_path, "list").stdout == ""
    r = cli(tmp_path, "cancel", "x" * 500)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "x" * 65 not in r.stderr


def test_error_replies_quote_ids_of_at_most_64_characters(tmp_path):
    slow, _ = start(tmp_path)
    long_id = "call_" + "z" * 115  # under max_id_chars (128), so it is looked up

    async def attack() -> dict:
        r = await Robot(slow, "arm").open()
        await r.status(long_id, "running")
        return await r.next("error")

    try:
        err = asyncio.run(attack())
        assert err["code"] == "unknown_call"
        assert long_id not in json.dumps(err) and "z" * 65 not in json.dumps(err)
    finally:
        slow.stop()


def test_the_outbox_and_its_lock_are_private_whatever_mode_the_file_had(tmp_path):
    box = tmp_path / "outbox.sqlite3"
    box.write_bytes(b"")
    box.chmod(0o644)  # as an older version left it
    slow, hub = start(tmp_path)
    try:
        speak(hub, "I'll pick up the red cup.")
        wait_until(lambda: len(statuses(slow)) == 1, what="stored")
        for f in tmp_path.glob("outbox.sqlite3*"):
            assert f.stat().st_mode & 0o077 == 0, f
    finally:
        slow.stop()
