"""`creature demo --once --robot`: the scene's "Sure, I'll pick up the red cup." reaches the
example robot over the robot channel, completes, and every step is in the session record."""

from __future__ import annotations

import json

from tests.conftest import creature


def test_demo_fires_a_tool_call_the_example_robot_completes(tmp_path):
    record = tmp_path / "demo.jsonl"
    r = creature(
        "demo",
        "--once",
        "--no-face",
        "--robot",
        "--robot-delay",
        "0.5",
        "--record",
        str(record),
        "--set",
        "slow_loop.robot.port=0",
        "--set",
        f"slow_loop.outbox.path={tmp_path / 'outbox.sqlite3'}",
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["intents"] == 1 and summary["tool_calls_settled"] is True
    events = [json.loads(line) for line in record.read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    intent = next(e for e in events if e["kind"] == "intent")
    assert intent["action"] == "pick_up" and intent["object"] == "red cup"
    call = next(e for e in events if e["kind"] == "tool_call")
    assert call["arguments"]["utterance"] == "Sure, I'll pick up the red cup."
    statuses = [e["status"] for e in events if e["kind"] == "tool_status"]
    assert statuses == ["accepted", "running", "succeeded"]
    states = [(e["from"], e["to"]) for e in events if e["kind"] == "state"]
    i = states.index(("speaking", "acting"))
    assert states[i + 1][0] == "acting"  # and back out of acting
    looks = [e for e in events if e["kind"] == "affect"]
    assert any(e["cause"] == "state:acting" and e["mood"] == "focused" for e in looks)
    assert any(e["cause"] == "tool_succeeded" and e["emotion"] == "happy" for e in looks)
    # the order of the story: intent, call, statuses
    assert kinds.index("intent") < kinds.index("tool_call") < kinds.index("tool_status")
