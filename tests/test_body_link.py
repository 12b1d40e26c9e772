"""A body's link (orchestrator/bodies/link.py) against the creature's real robot channel and
expression stream: the robot's duties, kept once for every body. The body here records what it
is asked (a robot's motors cannot exist in this test; tests/test_reachy_mini_body.py has the
simulated Reachy Mini)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from orchestrator.bodies.link import (
    INTERRUPTED,
    STOPPED,
    Call,
    Capability,
    Expression,
    Link,
    hello_message,
)
from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from tests.slow_support import frame, slow_cfg, speak, wait_until


class RecordingBody:
    kind = "test-head"
    capabilities = [Capability("gesture", {"gesture": ["nod"]}), Capability("stop", {})]

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self.performed: list[Call] = []
        self.events: list[str] = []
        self.looks: list[Expression] = []

    async def perform(self, call: Call) -> None:
        self.performed.append(call)
        self.events.append(f"perform {call.action}")
        await asyncio.sleep(self.seconds)

    def halt(self) -> None:
        self.events.append("halt")

    def express(self, expression: Expression) -> None:
        self.looks.append(expression)


class Running:
    """A Link on its own thread and loop."""

    def __init__(self, url: str, token: str, body: RecordingBody, db: str) -> None:
        self.link = Link(url, token, body, "test-head", db)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.loop.run_until_complete(self.link.run())
        except RuntimeError:  # crash(): the loop stopped before the link finished
            pass

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.link.stop)
        self.thread.join(10)
        self.loop.close()

    def crash(self) -> None:
        """The body's process dies: its loop stops where it is, nothing more is written."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def slow(tmp_path):
    hub = Bus()
    # a crashed body's socket is not closed: its successor takes the name over
    cfg = slow_cfg(tmp_path, **{"intents.repeat_window_s": 0.01, "robot.on_duplicate": "take_over"})
    s = BrainHost(cfg, hub).start()
    s.hub = hub
    yield s
    s.stop()


def calls(slow) -> dict[str, str]:
    return {c.id: str(c.status.value) for c in slow.run_sync(lambda: slow.outbox.all_calls())}


def test_the_hello_names_the_body_and_what_it_can_do():
    assert hello_message("test-head", RecordingBody.capabilities) == {
        "type": "hello",
        "body": "test-head",
        "capabilities": [
            {"action": "gesture", "slots": {"gesture": ["nod"]}},
            {"action": "stop", "slots": {}},
        ],
    }


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_a_call_taken_on_before_a_body_restart_is_never_done_twice(slow, tmp_path, crash):
    """Stopped: the body records the call failed and says so when it is sent again. Crashed
    (its loop gone, nothing recorded after "running"): failed as interrupted, not redone."""
    db = str(tmp_path / "tasks.sqlite3")
    first = Running(slow.robot_url, slow.token, RecordingBody(), db)
    wait_until(lambda: slow.run_sync(lambda: len(slow.dispatcher.robots)) == 1, what="connected")
    speak(slow.hub, "Sure, I'll nod.")
    wait_until(lambda: "running" in calls(slow).values(), what="running")
    if crash:
        first.crash()
    else:
        first.stop()
    again = RecordingBody()
    second = Running(slow.robot_url, slow.token, again, db)
    try:
        wait_until(lambda: "failed" in calls(slow).values(), what=f"failed: {calls(slow)}")
        assert again.performed == []  # delivered again (attempt 2), not done again
        call = slow.run_sync(lambda: slow.outbox.all_calls())[0]
        assert call.reason == (INTERRUPTED if crash else STOPPED)
    finally:
        second.stop()


def test_a_cancel_halts_the_body_before_the_call_ends_cancelled(slow, tmp_path):
    body = RecordingBody()
    r = Running(slow.robot_url, slow.token, body, ":memory:")
    try:
        wait_until(
            lambda: slow.run_sync(lambda: len(slow.dispatcher.robots)) == 1, what="connected"
        )
        i = speak(slow.hub, "Sure, I'll nod.")
        wait_until(lambda: "running" in calls(slow).values(), what="running")
        speak(slow.hub, "Okay, I'll stop.", i)
        wait_until(lambda: "cancelled" in calls(slow).values(), what="cancelled")
        assert body.events == ["perform gesture", "halt"]
    finally:
        r.stop()


def test_the_body_gets_the_creatures_look(slow):
    body = RecordingBody()
    r = Running(slow.robot_url, slow.token, body, ":memory:")
    try:
        wait_until(lambda: slow.expression.subscribers, what="subscribed")
        for i in range(10):
            slow.hub.publish(frame(i, mouth=0.7))
        wait_until(lambda: body.looks and body.looks[-1].speaking, what="a speaking look")
        assert 0.0 < body.looks[-1].mouth <= 1.0
    finally:
        r.stop()


def test_the_duties_answer_a_repeat_and_a_cancel_from_the_task_log(tmp_path):
    """One answer for every robot (the example robot, the link, the ROS 2 bridge)."""
    import os
    import stat

    from orchestrator.bodies.duties import TaskLog, cancel_answer, repeat_answer

    log = TaskLog(tmp_path / "robot" / "tasks.sqlite3")
    assert stat.S_IMODE(os.stat(tmp_path / "robot" / "tasks.sqlite3").st_mode) == 0o600
    log.put("c1", "running")
    log.put("c2", "succeeded")
    # a call taken on before a restart, not live here: failed, never done again
    assert repeat_answer(log.get("c1"), False, INTERRUPTED) == ("failed", INTERRUPTED)
    assert repeat_answer(log.get("c1"), True, INTERRUPTED) == ("running", None)
    assert repeat_answer(log.get("c2"), False, INTERRUPTED) == ("succeeded", None)
    assert cancel_answer(None, INTERRUPTED) == ("cancelled", "cancelled before it started")
    assert cancel_answer(log.get("c1"), INTERRUPTED) == ("cancelled", INTERRUPTED)
    assert cancel_answer(log.get("c2"), INTERRUPTED) == ("succeeded", None)
    log.close()
