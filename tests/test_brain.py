"""The brain on scripted event streams: no sockets, no threads. Events in, typed decisions out."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.brain.brain import Brain
from orchestrator.brain.calls import CallStatus, StatusError, StatusErrorCode
from orchestrator.brain.events import (
    AffectChanged,
    CallsCancelled,
    IntentDetected,
    StateChanged,
    ToolCallSent,
    ToolStatusChanged,
)
from orchestrator.brain.outbox import Outbox
from orchestrator.data_files import load_affect_map
from tests.slow_support import LinkToARobot, frame, slow_cfg
from track2_voice.events import Disconnected, UserSpeechStarted


@pytest.fixture
def brain(tmp_path):
    published: list = []
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    b = Brain(slow_cfg(tmp_path), load_affect_map(), outbox, published.append)
    b.published = published
    yield b
    outbox.close()


async def say(brain: Brain, text: str, start: int = 0) -> int:
    i = start
    for word in text.split():
        await brain.handle(frame(i, " " + word))
        i += 1
    for _ in range(3):  # quiet frames after the sentence
        await brain.handle(frame(i, None, mouth=0.0))
        i += 1
    await asyncio.sleep(0)  # reactions run as tasks on this loop
    return i


def of(brain: Brain, cls) -> list:
    return [e for e in brain.published if isinstance(e, cls)]


async def test_a_commitment_becomes_one_tool_call_and_the_lifecycle_drives_the_state(brain):
    robot = LinkToARobot()
    brain.dispatcher.robot_connected(robot)
    i = await say(brain, "Sure, I'll pick up the red cup.")
    (intent,) = of(brain, IntentDetected)
    assert intent.intent.action == "pick_up" and intent.intent.slots["object"] == "red cup"
    (call,) = of(brain, ToolCallSent)
    assert call.robot == "scripted" and call.arguments["object"] == "red cup"
    sent = [m for m in robot.messages if m["type"] == "tool_call"]
    assert [m["id"] for m in sent] == [call.id]
    assert brain.states.state == "acting"
    for status in ("accepted", "running", "succeeded"):
        brain.dispatcher.on_status(call.id, status, None, "scripted", robot)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    statuses = [e.status for e in of(brain, ToolStatusChanged)]
    assert statuses == [CallStatus.ACCEPTED, CallStatus.RUNNING, CallStatus.SUCCEEDED]
    assert brain.states.state != "acting"
    assert any(e.cause == "tool_succeeded" for e in of(brain, AffectChanged))
    face = brain.face_state(frame(i, None, mouth=0.0)).to_dict()
    assert face["state"] == brain.states.state and face["robot"] is True


async def test_status_updates_fail_with_codes_not_prose(brain):
    with pytest.raises(StatusError) as e:
        brain.dispatcher.on_status("call_nope", "running", None, "scripted")
    assert e.value.code is StatusErrorCode.UNKNOWN_CALL
    with pytest.raises(StatusError) as e:
        brain.dispatcher.on_status("call_nope", "flying", None, "scripted")
    assert e.value.code is StatusErrorCode.BAD_STATUS


async def test_a_status_never_moves_backwards(brain):
    robot = LinkToARobot()
    brain.dispatcher.robot_connected(robot)
    await say(brain, "Sure, I'll pick up the red cup.")
    (call,) = of(brain, ToolCallSent)
    brain.dispatcher.on_status(call.id, "running", None, "scripted", robot)
    brain.dispatcher.on_status(call.id, "accepted", None, "scripted", robot)  # late: ignored
    brain.dispatcher.on_status(call.id, "running", None, "scripted", robot)  # re-report: ignored
    assert [e.status for e in of(brain, ToolStatusChanged)] == [CallStatus.RUNNING]


async def test_stop_cancels_what_is_open(brain):
    robot = LinkToARobot()
    brain.dispatcher.robot_connected(robot)
    i = await say(brain, "Sure, I'll pick up the red cup.")
    await say(brain, "Okay, I'll stop.", i)
    (cancel,) = of(brain, CallsCancelled)
    assert len(cancel.ids) == 1
    assert robot.messages[-1] == {"type": "cancel", "id": cancel.ids[0], "reason": cancel.reason}


async def test_who_speaks_drives_the_state_machine(brain):
    await brain.handle(UserSpeechStarted(index=0, t=0.0, probability=0.9))
    await say(brain, "hello there", 1)
    await brain.handle(Disconnected(index=9, t=0.7, url="ws://x", reason="test", retry_s=1.0))
    changes = [(e.src, e.dst) for e in of(brain, StateChanged)]
    assert changes[0] == ("idle", "listening")
    assert changes[-1][1] == "disconnected"
    assert brain.face_state(frame(10, None)).to_dict()["connected"] is False


async def test_illegal_transitions_are_refused_recorded_and_ignored(brain):
    """The attack: 'succeeded' for a call no robot ever got, and an outcome flipped after the
    fact. Both get ILLEGAL_TRANSITION, a StatusRefused event, and change nothing."""
    from orchestrator.brain.events import StatusRefused

    await say(brain, "Sure, I'll pick up the red cup.")  # no robot: the call stays queued
    (call,) = of(brain, ToolCallSent)
    robot = LinkToARobot()
    with pytest.raises(StatusError) as e:  # over HTTP, never given to a webhook
        brain.dispatcher.on_status(call.id, "succeeded", None, "http")
    assert e.value.code is StatusErrorCode.NOT_YOURS
    with pytest.raises(StatusError) as e:  # a connection the call was never sent to
        brain.dispatcher.on_status(call.id, "succeeded", None, "scripted", robot)
    assert e.value.code is StatusErrorCode.NOT_YOURS
    assert brain.outbox.get(call.id).status is CallStatus.QUEUED
    # as if handed over (its robot, connected), but the outbox says queued
    brain.dispatcher.robots.append(robot)
    brain.outbox._db.execute("UPDATE calls SET robot = ? WHERE id = ?", (robot.name, call.id))
    with pytest.raises(StatusError) as e:
        brain.dispatcher.on_status(call.id, "succeeded", None, "scripted", robot)
    assert e.value.code is StatusErrorCode.ILLEGAL_TRANSITION
    assert brain.outbox.get(call.id).status is CallStatus.QUEUED

    brain.dispatcher.robots.remove(robot)
    brain.dispatcher.robot_connected(robot)  # now it is delivered
    brain.dispatcher.on_status(call.id, "succeeded", None, "scripted", robot)
    with pytest.raises(StatusError) as e:
        brain.dispatcher.on_status(call.id, "failed", "changed my mind", "scripted", robot)
    assert e.value.code is StatusErrorCode.ILLEGAL_TRANSITION
    assert brain.outbox.get(call.id).status is CallStatus.SUCCEEDED
    refused = of(brain, StatusRefused)
    assert [(r.code, r.status, r.current) for r in refused] == [
        ("not_yours", "succeeded", "queued"),
        ("not_yours", "succeeded", "queued"),
        ("illegal_transition", "succeeded", "queued"),
        ("illegal_transition", "failed", "succeeded"),
    ]
    assert brain.outbox.history(call.id) == ["queued", "succeeded"]  # (sent is not a history row)


def test_the_transition_table_covers_every_pair():
    from orchestrator.brain.calls import NEXT, Transition

    assert set(NEXT) == set(CallStatus)
    q, s = CallStatus.QUEUED, CallStatus.SUCCEEDED
    assert q.transition(s) is Transition.ILLEGAL
    assert CallStatus.RUNNING.transition(CallStatus.ACCEPTED) is Transition.STALE
    assert s.transition(s) is Transition.STALE
    assert s.transition(CallStatus.FAILED) is Transition.ILLEGAL
    for old in CallStatus:
        for new in NEXT[old]:
            assert old.may_become(new)
