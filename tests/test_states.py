"""The state machine on scripted event streams, directly and through the slow loop."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from orchestrator.brain.events import StateChanged
from orchestrator.brain.states import CreatureStates
from orchestrator.bus import Bus
from orchestrator.config import load_config
from orchestrator.runtime.brain_host import BrainHost
from tests.slow_support import wait_until
from track2_voice.events import (
    Connected,
    Disconnected,
    FrameEvent,
    UserSpeechEnded,
    UserSpeechStarted,
)


def run_script(steps) -> tuple[list[tuple[str, str, str]], str]:
    async def main():
        log = []
        s = CreatureStates(lambda a, b, t: log.append((a, b, t)))
        for name, *arg in steps:
            await getattr(s, name)(*arg)
        return log, s.state

    return asyncio.run(main())


def test_listening_speaking_acting_and_back():
    log, state = run_script(
        [
            ("user", True),
            ("user", False),
            ("creature", True),
            ("task_started",),
            ("creature", False),
            ("task_done",),
        ]
    )
    assert [b for _, b, _ in log] == ["listening", "idle", "speaking", "acting", "idle"]
    assert state == "idle"


def test_acting_holds_through_speech_then_settles_into_what_is_going_on():
    log, state = run_script([("task_started",), ("user", True), ("task_done",)])
    assert [b for _, b, _ in log] == ["acting", "idle", "listening"]
    assert state == "listening"


def test_disconnection_wins_from_anywhere_and_reconnection_settles():
    log, state = run_script([("creature", True), ("lost",), ("user", True), ("found",)])
    assert [(a, b) for a, b, _ in log] == [
        ("idle", "speaking"),
        ("speaking", "disconnected"),
        ("disconnected", "idle"),
        ("idle", "listening"),
    ]
    assert log[1][2] == "lost" and state == "listening"


def test_barge_in_goes_to_listening_and_back_to_speaking():
    log, state = run_script([("creature", True), ("user", True), ("user", False)])
    assert [b for _, b, _ in log] == ["speaking", "listening", "speaking"]


def frame(i: int, mouth: float = 0.0, text: str | None = None, user: bool = False) -> FrameEvent:
    return FrameEvent(
        index=i,
        t=time.monotonic(),
        mouth=mouth,
        rms_db=-60.0,
        text=text,
        user_speaking=user,
        pcm=np.zeros(1920, np.float32),
    )


def test_slow_loop_publishes_each_transition_and_the_face_state_follows(tmp_path):
    cfg = load_config(
        overrides={
            "slow_loop.robot.enabled": False,
            "slow_loop.outbox.path": str(tmp_path / "o.sqlite3"),
        }
    ).slow_loop
    hub = Bus()
    rec = hub.subscribe("test", 4096)
    slow = BrainHost(cfg, hub).start()
    try:
        hub.publish(UserSpeechStarted(index=0, t=time.monotonic(), probability=0.9))
        hub.publish(UserSpeechEnded(index=1, t=time.monotonic(), probability=0.1))
        for i in range(2, 6):
            hub.publish(frame(i, 0.5, " hi" if i == 2 else None))
        hub.publish(
            Disconnected(index=6, t=time.monotonic(), url="ws://x", reason="test", retry_s=0)
        )
        wait_until(lambda: slow.states.state == "disconnected", what="the disconnected state")
        face = slow.run_sync(lambda: slow.brain.face_state(frame(7, 0.3)).to_dict())
        assert face["connected"] is False and face["state"] == "disconnected"
        assert set(face) >= {
            "emotion",
            "mouth",
            "speaking",
            "valence",
            "arousal",
            "listening",
            "t",
            "connected",
        }
        assert face["mouth"] == 0.3 and face["speaking"] is True
        hub.publish(Connected(index=8, t=time.monotonic(), url="ws://x", session=2))
        wait_until(lambda: slow.states.state != "disconnected", what="leaving disconnected")
    finally:
        slow.stop()
    states = [(e.src, e.dst) for e in rec.drain() if isinstance(e, StateChanged)]
    assert states[:4] == [
        ("idle", "listening"),
        ("listening", "idle"),
        ("idle", "speaking"),
        ("speaking", "disconnected"),
    ]
    assert states[4] == ("disconnected", "idle")
