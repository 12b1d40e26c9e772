"""`creature demo --once --robot`: the user asks for the red cup, the scene's "Sure, I'll get it
for you." makes it a call with the user's object, which reaches the example robot over the robot channel, completes, and every step is in the session record
(the run is conftest's ``demo_once``, shared with the other tests that read a demo)."""

from __future__ import annotations

import json


def test_demo_fires_a_tool_call_the_example_robot_completes(demo_once):
    r, record = demo_once
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["intents"] == 1 and summary["tool_calls_settled"] is True
    events = [json.loads(line) for line in record.read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    intent = next(e for e in events if e["kind"] == "intent")
    assert intent["action"] == "bring" and intent["object"] == "red cup"
    assert intent["recipient"] == "user"
    call = next(e for e in events if e["kind"] == "tool_call")
    assert call["arguments"]["utterance"] == "Sure, I'll get it for you."
    assert call["arguments"]["object"] == "red cup"  # the user's object, never "it"
    bound = next(e for e in events if e["kind"] == "dialogue")
    assert bound["binding"] == "pronoun_to_request"
    assert bound["user"] == "Could you bring me the red cup from the table?"
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
