"""The planner beside the rules: what it is shown, how its answer is checked, and each policy,
through the real HTTP client against a chat-completions test peer (tests/openai_peer.py) on
loopback. The real llama.cpp server is in tests/test_planner_llama.py."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from orchestrator.brain.brain import Brain
from orchestrator.brain.events import (
    PlannerConsulted,
    PlannerDecision,
    ToolCallSent,
)
from orchestrator.brain.outbox import Outbox
from orchestrator.brain.planner import Turn, named_objects
from orchestrator.brain.planner_answer import read_answer
from orchestrator.brain.tool_schema import tool_schema
from orchestrator.data_files import load_affect_map
from orchestrator.runtime.planner_client import PlannerClient
from tests.openai_peer import OpenAIPeer, tool_answer
from tests.slow_support import LinkToARobot, frame, slow_cfg
from track2_voice.events import UserWord

ALLOWED = ("pick_up", "bring", "put_down")


@pytest.fixture
def peer():
    with OpenAIPeer() as p:
        yield p


def planner_brain(tmp_path, url: str, policy: str = "augment", allowed=None, **planner):
    published: list = []
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    overrides = {f"planner.{k}": v for k, v in {"url": url, "policy": policy, **planner}.items()}
    if allowed is not None:
        overrides["safety.allowed_actions"] = list(allowed)
    b = Brain(slow_cfg(tmp_path, **overrides), load_affect_map(), outbox, published.append)
    d = b.deliberation
    d.port = PlannerClient(b.cfg.planner, d.read, d.answered)
    b.published = published
    b.robot = LinkToARobot()
    b.dispatcher.robot_connected(b.robot)
    return b


async def say(brain: Brain, text: str, start: int = 0) -> int:
    i = start
    for word in text.split():
        await brain.handle(frame(i, " " + word))
        i += 1
    for _ in range(10):  # quiet frames: the sentence ends
        await brain.handle(frame(i, None, mouth=0.0))
        i += 1
    return i


async def user_says(brain: Brain, text: str) -> None:
    for n, word in enumerate(text.split()):
        await brain.handle(UserWord(text=word, start=n * 0.3, end=n * 0.3 + 0.25, final=True))


def of(brain: Brain, cls) -> list:
    return [e for e in brain.published if isinstance(e, cls)]


async def until(pred, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def close(brain: Brain) -> None:
    await brain.deliberation.port.aclose()
    brain.deliberation.close()
    brain.outbox.close()


# -- what it is shown and how its answer is read ----------------------------------------------
def test_the_objects_named_are_things_not_time_words_or_pronouns():
    turns = [
        Turn("user", "Could you bring me the red cup from the table?", 0.0),
        Turn("creature", "Sure, I'll turn the lights off in a sec, and get it for you.", 1.0),
    ]
    assert named_objects(turns) == ["lights", "red cup", "table"]


def _call(**args) -> dict:
    return {"function": {"name": "do_physical_task", "arguments": json.dumps(args)}}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_call(action="pick_up", object="it"), "pronoun"),
        (_call(action="pick_up", object="blue block"), "not named in the dialogue"),
        (_call(action="fly", object="red cup"), "unknown action"),
        (_call(action="stop"), "not allowed now"),
        (_call(action="pick_up"), "pick_up needs object"),
        (_call(action="pick_up", object="red cup", speed="fast"), "unknown field"),
        (_call(action="pick_up", object=7), "expected a string"),
        ({"function": {"name": "rm_rf", "arguments": "{}"}}, "unknown tool"),
        ({"function": {"name": "do_physical_task", "arguments": "{not json"}}, "not JSON"),
        ({"function": {"name": "do_physical_task", "arguments": "[1, 2]"}}, "not an object"),
    ],
)
def test_a_proposal_passes_the_rules_a_rules_call_passes(raw, why):
    body = {"choices": [{"message": {"tool_calls": [raw]}}]}
    answer = read_answer(body, tool_schema(), ALLOWED, ["red cup"])
    assert answer.verdict.value == "none" and not answer.proposals
    (refused,) = answer.refused
    assert why in refused.reason


@pytest.mark.parametrize(
    "body", [None, [], {"choices": []}, {"choices": [{"message": "hi"}]}, {"choices": [7]}]
)
def test_an_answer_that_is_not_chat_completions_is_malformed(body):
    assert read_answer(body, tool_schema(), ALLOWED, None).verdict.value == "malformed"


def test_a_good_proposal_is_kept_with_its_object_as_named():
    body = tool_answer({"action": "pick_up", "object": "The Red Cup", "destination": None})
    answer = read_answer(body, tool_schema(), ALLOWED, ["red cup"])
    (p,) = answer.proposals
    assert p.action == "pick_up" and p.slots["object"] == "red cup"
    assert answer.prompt_tokens == 120 and answer.completion_tokens == 30


# -- the policies, through the real client -------------------------------------------------------
async def test_augment_adds_a_call_the_rules_missed(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "augment", allowed=(*ALLOWED, "stop"))
    peer.answer(tool_answer({"action": "bring", "object": "red cup", "recipient": "user"}))
    await user_says(b, "could you bring me the red cup")
    await say(b, "Okay, right away.")
    await until(lambda: of(b, ToolCallSent), what="the planner's call")
    (call,) = of(b, ToolCallSent)
    assert call.arguments["action"] == "bring" and call.arguments["object"] == "red cup"
    assert [m["type"] for m in b.robot.messages] == ["tool_call"]
    (decision,) = of(b, PlannerDecision)
    assert decision.decision == "added" and call.intent == decision.intent
    (asked,) = of(b, PlannerConsulted)
    assert asked.verdict == "calls" and asked.prompt_tokens == 120
    # what the planner saw: both sides of the dialogue, and a tool narrowed to what was named
    request = peer.requests[0]
    shown = request["messages"][1]["content"]
    assert (
        "user: could you bring me the red cup" in shown and "creature: Okay, right away." in shown
    )
    params = request["tools"][0]["function"]["parameters"]["properties"]
    # every allowed action needs an object: one of those named, never null; no allowed
    # action makes a gesture: null only
    assert params["object"]["anyOf"] == [{"type": "string", "maxLength": 80, "enum": ["red cup"]}]
    assert params["gesture"]["anyOf"] == [{"type": "null"}]
    assert set(params["action"]["enum"]) == set(ALLOWED)
    await close(b)


async def test_augment_does_not_repeat_a_call_the_rules_made(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "augment")
    peer.answer(tool_answer({"action": "pick_up", "object": "red cup"}))
    await say(b, "Sure, I'll pick up the red cup.")
    await until(lambda: of(b, PlannerDecision), what="the planner's decision")
    (call,) = of(b, ToolCallSent)  # the rules' call, once
    assert of(b, PlannerDecision)[0].decision == "duplicate"
    # the planner was shown the open call
    assert f'"id": "{call.id}"' in peer.requests[0]["messages"][1]["content"]
    await close(b)


async def test_confirm_sends_a_rules_call_the_planner_agrees_with(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "confirm")
    peer.answer(tool_answer({"action": "pick_up", "object": "red cup"}))
    await say(b, "Sure, I'll pick up the red cup.")
    await until(lambda: of(b, ToolCallSent), what="the confirmed call")
    assert [d.decision for d in of(b, PlannerDecision)] == ["confirmed"]
    held = peer.requests[0]["messages"][1]["content"]
    assert "wait for your agreement" in held and "red cup" in held
    await close(b)


async def test_confirm_drops_a_rules_call_the_planner_vetoes(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "confirm")
    peer.answer(tool_answer())  # no call: the planner does not agree
    await say(b, "Sure, I'll pick up the red cup.")
    await until(lambda: of(b, PlannerDecision), what="the veto")
    assert [d.decision for d in of(b, PlannerDecision)] == ["vetoed"]
    await asyncio.sleep(0.2)
    assert not of(b, ToolCallSent) and not b.robot.messages
    await close(b)


@pytest.mark.parametrize(("on_timeout", "sent"), [("send", 1), ("drop", 0)])
async def test_confirm_at_its_bound_does_what_the_config_says(tmp_path, peer, on_timeout, sent):
    b = planner_brain(
        tmp_path, peer.url, "confirm", confirm_wait_s=0.3, on_confirm_timeout=on_timeout
    )
    peer.answer(tool_answer({"action": "pick_up", "object": "red cup"}), delay_s=2.0)
    await say(b, "Sure, I'll pick up the red cup.")
    await until(lambda: of(b, PlannerDecision), what="the bound")
    assert of(b, PlannerDecision)[0].decision == f"{'sent' if sent else 'dropped'}_at_bound"
    assert len(of(b, ToolCallSent)) == sent
    await close(b)


async def test_a_stop_never_waits_for_the_planner(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "confirm", confirm_wait_s=5.0)
    peer.answer(tool_answer({"action": "pick_up", "object": "red cup"}))
    await say(b, "Sure, I'll pick up the red cup.")
    await until(lambda: of(b, ToolCallSent), what="the confirmed call")
    peer.answer(tool_answer(), delay_s=3.0)  # a slow planner
    t0 = time.monotonic()
    await say(b, "Okay, I'll stop.", start=100)
    assert [m["type"] for m in b.robot.messages] == ["tool_call", "cancel"]
    assert time.monotonic() - t0 < 1.0
    await close(b)


async def test_planner_policy_alone_makes_the_calls(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "planner")
    peer.answer(tool_answer({"action": "pick_up", "object": "red cup"}))
    await say(b, "Sure, I'll pick up the red cup.")
    await until(lambda: of(b, ToolCallSent), what="the planner's call")
    decisions = [d.decision for d in of(b, PlannerDecision)]
    assert decisions == ["ignored", "added"]
    assert len(of(b, ToolCallSent)) == 1
    await close(b)


@pytest.mark.parametrize(
    "garbage",
    [b"not json at all", b"[" * 5000 + b"]" * 5000, b'{"choices": 12345' + b"9" * 5000 + b"}"],
    ids=["text", "deep", "huge-int"],
)
async def test_garbage_from_the_endpoint_is_refused_and_recorded(tmp_path, peer, garbage):
    b = planner_brain(tmp_path, peer.url, "augment")
    peer.answer(garbage)
    await say(b, "Okay, right away.")
    await until(lambda: of(b, PlannerConsulted), what="the verdict")
    (asked,) = of(b, PlannerConsulted)
    assert asked.verdict == "malformed" and not of(b, ToolCallSent)
    await close(b)


async def test_an_oversize_answer_is_refused_before_it_is_parsed(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "augment", max_response_bytes=4096)
    peer.answer(b'{"pad": "' + b"x" * 100_000 + b'"}')
    await say(b, "Okay, right away.")
    await until(lambda: of(b, PlannerConsulted), what="the verdict")
    (asked,) = of(b, PlannerConsulted)
    assert asked.verdict == "malformed" and "max_response_bytes" in asked.detail
    await close(b)


async def test_a_newer_dialogue_supersedes_the_question_in_flight(tmp_path, peer):
    b = planner_brain(tmp_path, peer.url, "augment")
    peer.answer(tool_answer({"action": "pick_up", "object": "red cup"}), delay_s=1.0)
    peer.answer(tool_answer())
    i = await say(b, "Okay, the red cup.")
    await until(lambda: peer.requests, what="the first question to arrive")
    await say(b, "Hmm, actually no.", start=i)
    await until(lambda: len(of(b, PlannerConsulted)) == 2, what="both verdicts")
    verdicts = sorted(e.verdict for e in of(b, PlannerConsulted))
    assert verdicts == ["none", "superseded"] and not of(b, ToolCallSent)
    await close(b)


async def test_the_endpoint_going_away_is_an_error_verdict_not_a_crash(tmp_path):
    with OpenAIPeer() as gone:
        url = gone.url
    b = planner_brain(tmp_path, url, "augment")
    await say(b, "Okay, right away.")
    await until(lambda: of(b, PlannerConsulted), what="the verdict")
    assert of(b, PlannerConsulted)[0].verdict == "error"
    await close(b)


async def test_the_api_key_comes_from_the_environment_never_the_config(tmp_path, peer, monkeypatch):
    monkeypatch.setenv("CREATURE_PLANNER_KEY", "sk-test-123")
    b = planner_brain(tmp_path, peer.url, "augment")
    await say(b, "Okay, right away.")
    await until(lambda: of(b, PlannerConsulted), what="the verdict")
    assert peer.headers[0]["authorization"] == "Bearer sk-test-123"
    await close(b)


# -- never in the voice's way ----------------------------------------------------------------
def test_a_five_second_planner_costs_the_fast_loop_no_deadline(tmp_path):
    """The real fast loop (replay backend, the greeting scene: the user asks for the red cup,
    the creature answers "Sure, I'll get it for you.") against deadlines, while the planner takes 5 s to answer; the same run without
    the slow loop, before and after, is the baseline (tests/test_slow_loop_isolation.py)."""
    import numpy as np

    from orchestrator.bus import Bus
    from orchestrator.runtime.brain_host import BrainHost
    from tests.slow_support import wait_until
    from tests.test_slow_loop_isolation import FRAMES, MISS_SLACK, _run_fast_loop
    from track2_voice.audio.devices import write_wav
    from track2_voice.frames import FRAME_SAMPLES

    wav = tmp_path / "silence.wav"
    write_wav(wav, np.zeros(FRAMES * FRAME_SAMPLES, np.float32))
    with OpenAIPeer() as peer:
        peer.default = type(peer.default)(
            json.dumps(tool_answer({"action": "bring", "object": "red cup"})).encode(), 5.0
        )
        baseline = _run_fast_loop(wav, Bus())
        hub = Bus()
        rec = hub.subscribe("test", 100_000)
        cfg = slow_cfg(tmp_path, **{"planner.url": peer.url, "planner.timeout_s": 8.0})
        slow = BrainHost(cfg, hub).start()
        try:
            stats = _run_fast_loop(wav, hub)
            wait_until(
                lambda: any(
                    e.kind == "planner" and e.verdict != "superseded" for e in list(rec._items)
                ),
                timeout=15,
                what="the planner's answer",
            )
        finally:
            slow.stop()
        after = _run_fast_loop(wav, Bus())
    assert stats.frames == baseline.frames == FRAMES
    assert stats.missed <= max(baseline.missed, after.missed) + MISS_SLACK, stats.summary()
    events = rec.drain()
    answered = [e for e in events if e.kind == "planner" and e.verdict != "superseded"]
    assert answered and all(e.latency_ms >= 5000 and e.verdict == "calls" for e in answered)
    (call,) = [e for e in events if e.kind == "tool_call"]  # the rules' call, not delayed
    assert call.arguments["object"] == "red cup"
    assert {e.decision for e in events if e.kind == "planner_decision"} == {"duplicate"}


def test_the_report_counts_the_planner_requests_and_decisions(tmp_path):
    from orchestrator.analysis.record_file import read_record
    from orchestrator.analysis.summary import summarize

    lines = [
        PlannerConsulted(
            t=1.0,
            request=1,
            trigger="creature_sentence",
            policy="confirm",
            verdict="calls",
            latency_ms=300.0,
            prompt_tokens=900,
            completion_tokens=40,
        ),
        PlannerConsulted(
            t=2.0,
            request=2,
            trigger="confirm",
            policy="confirm",
            verdict="timeout",
            latency_ms=4000.0,
        ),
        PlannerDecision(
            t=1.0,
            decision="confirmed",
            policy="confirm",
            action="pick_up",
            object="red cup",
            request=1,
        ),
    ]
    path = tmp_path / "session.jsonl"
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in lines))
    rec = read_record(path)
    assert [type(e) for e in rec.events] == [PlannerConsulted, PlannerConsulted, PlannerDecision]
    planner = summarize(rec).figures()["planner"]
    assert planner["requests"] == 2 and planner["by_verdict"] == {"calls": 1, "timeout": 1}
    assert planner["latency_ms_p50"] == 300.0 and planner["prompt_tokens"] == 900
    assert planner["decisions"] == {"confirmed": 1}


async def test_the_planner_is_offered_only_what_the_connected_bodies_can_do(tmp_path, peer):
    """A body that declared its actions (its hello): the planner's tool is cut to them, and
    the planner is told which bodies are here."""
    from orchestrator.brain.robot_protocol import Capability

    b = planner_brain(tmp_path, peer.url, "augment")
    b.dispatcher.robot_disconnected(b.robot)
    head = LinkToARobot()
    head.name, head.body = "head", "reachy-mini"
    head.capabilities = (Capability("gesture"), Capability("look_at"))
    b.dispatcher.robot_connected(head)
    await say(b, "Okay, right away.")
    await until(lambda: of(b, PlannerConsulted), what="the verdict")
    request = peer.requests[0]
    actions = request["tools"][0]["function"]["parameters"]["properties"]["action"]["enum"]
    assert set(actions) == {"look_at", "gesture"}
    assert "head (reachy-mini)" in request["messages"][1]["content"]
    await close(b)
