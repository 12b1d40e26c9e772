"""Face states composed from the fast loop's events, and `creature serve` end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from orchestrator.brain.face_state import FaceState, NeutralFace, face_state
from orchestrator.brain.speaking import HANGOVER_FRAMES
from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import consume_events
from tests.face_support import serve_face_states
from track2_voice.events import Connected, Disconnected, FrameEvent

ROOT = Path(__file__).resolve().parent.parent


def _frame(i: int, mouth: float = 0.0, text: str | None = None, user: bool = False) -> FrameEvent:
    return FrameEvent(
        index=i,
        t=i * 0.08,
        mouth=mouth,
        rms_db=-60.0,
        text=text,
        model_ms=1.0,
        overhead_ms=0.1,
        user_speaking=user,
    )


def test_compose_follows_the_face_contract() -> None:
    s = face_state(_frame(3, mouth=0.5), speaking=True, connected=True).to_dict()
    assert {k: s[k] for k in ("emotion", "mouth", "speaking", "listening", "connected", "t")} == {
        "emotion": "neutral",
        "mouth": 0.5,
        "speaking": True,
        "listening": False,
        "connected": True,
        "t": 0.24,
    }
    assert "state" not in s and "robot" not in s  # only what is known is said
    assert face_state(_frame(1, mouth=1.7), speaking=True, connected=True).to_dict()["mouth"] == 1.0


async def test_neutral_face_speaks_through_word_gaps_and_tracks_the_connection() -> None:
    face = NeutralFace()
    await face.handle(_frame(0, mouth=0.0, text=" Hi"))  # words lead the audio
    assert face.face_state(_frame(0)).to_dict()["speaking"] is True
    for i in range(1, HANGOVER_FRAMES):
        await face.handle(_frame(i))
        assert face.face_state(_frame(i)).to_dict()["speaking"] is True, i
    await face.handle(_frame(HANGOVER_FRAMES))
    assert face.face_state(_frame(HANGOVER_FRAMES)).to_dict()["speaking"] is False
    await face.handle(Disconnected(url="ws://x", reason="test", retry_s=1.0))
    assert face.face_state(_frame(9)).to_dict()["connected"] is False
    await face.handle(Connected(url="ws://x", session=2))
    assert face.face_state(_frame(10)).to_dict()["connected"] is True


async def test_feed_publishes_the_newest_frame_of_each_batch() -> None:
    bus, states = Bus(), []
    sub = bus.subscribe_async("face", 32)
    for i in range(5):  # queued before the consumer runs: one batch
        bus.publish(_frame(i, mouth=0.5))
    task = asyncio.create_task(consume_events(sub, NeutralFace(), lambda: states.append))
    while not states:
        await asyncio.sleep(0.01)
    task.cancel()
    assert [s["t"] for s in states] == [0.32]


def test_creature_serve_streams_the_replay_scene_to_the_face() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "orchestrator.cli", "serve", "--backend", "replay",
         "--face-host", "127.0.0.1", "--face-port", "0", "--max-frames", "50",
         "--no-tls", "--set", "phone.token=face-bridge-test", "--set", "phone.qr=false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        states = serve_face_states(proc, [])
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert len(states) >= 20
    assert all({"emotion", "mouth", "speaking"} <= set(s) for s in states)
    assert any(s["speaking"] and s["mouth"] > 0.2 for s in states)  # the greeting is spoken


def test_the_face_state_is_typed_and_its_wire_form_keeps_the_documented_key_order() -> None:
    s = face_state(
        _frame(4, mouth=0.25, user=True),
        speaking=False,
        connected=True,
        state="listening",
        robot=False,
        visemes={"AA": 0.61234, "MBP": 0.38766},
        visemes_index=3,
    )
    assert isinstance(s, FaceState) and s.listening is True and s.index == 3
    assert json.dumps(s.to_dict()) == (
        '{"emotion": "neutral", "mouth": 0.25, "speaking": false, "valence": 0.0, '
        '"arousal": 0.0, "listening": true, "t": 0.32, "connected": true, "mood": null, '
        '"state": "listening", "robot": false, "visemes": {"AA": 0.612, "MBP": 0.388}, '
        '"index": 3}'
    )
