"""Face states composed from the fast loop's events, and `creature serve` end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from websockets.sync.client import connect

from orchestrator.runtime.face_bridge import FaceBridge, compose_face_state
from track2_voice.events import EventHub, FrameEvent, VoiceEvent

ROOT = Path(__file__).resolve().parent.parent


def _frame(i: int, mouth: float = 0.0, text: str | None = None, user: bool = False) -> FrameEvent:
    return FrameEvent(i, i * 0.08, mouth, -60.0, text, 1.0, 0.1, False, user)


def test_compose_follows_the_face_contract() -> None:
    s = compose_face_state(_frame(3, mouth=0.5), None, True)
    assert s == {
        "emotion": "neutral",
        "mouth": 0.5,
        "speaking": True,
        "listening": False,
        "connected": True,
        "t": 0.24,
    }
    quiet = compose_face_state(_frame(3, mouth=0.01, user=True), None, False)
    assert quiet["speaking"] is False and quiet["listening"] is True and quiet["connected"] is False
    # words lead the audio: a recent text piece counts as speaking even with a closed mouth
    assert compose_face_state(_frame(10, mouth=0.0), 10 * 0.08 - 0.1, True)["speaking"] is True
    assert compose_face_state(_frame(10, mouth=0.0), 10 * 0.08 - 1.0, True)["speaking"] is False
    assert compose_face_state(_frame(1, mouth=1.7), None, True)["mouth"] == 1.0


class Recorder:
    def __init__(self) -> None:
        self.states: list[dict] = []

    def publish(self, state: dict) -> None:
        self.states.append(state)


def test_bridge_publishes_per_frame_and_tracks_connection() -> None:
    hub, rec = EventHub(), Recorder()
    bridge = FaceBridge(hub, rec)
    hub.publish(_frame(0, text=" Hi"))
    _wait(lambda: len(rec.states) >= 1)
    assert rec.states[-1]["speaking"] is True
    hub.publish(VoiceEvent("disconnected", 1, 0.08))
    hub.publish(_frame(1))
    _wait(lambda: rec.states[-1]["t"] == 0.08)
    assert rec.states[-1]["connected"] is False
    hub.publish(VoiceEvent("connected", 2, 0.16))
    hub.publish(_frame(2))
    _wait(lambda: rec.states[-1]["t"] == 0.16)
    assert rec.states[-1]["connected"] is True
    bridge.close()


def _wait(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_creature_serve_streams_the_replay_scene_to_the_face() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "orchestrator.cli", "serve", "--backend", "replay",
         "--face-host", "127.0.0.1", "--face-port", "0", "--max-frames", "50",
         "--no-tls", "--set", "phone.token=face-bridge-test", "--set", "phone.qr=false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"face: open (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "serve printed no face URL"
        ws_url = url.split("?")[0].replace("http://", "ws://") + "ws/face"
        states = []
        with connect(ws_url) as ws:
            try:
                while True:
                    states.append(json.loads(ws.recv(timeout=10)))
            except Exception:  # the server went away at the end of the run
                pass
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert len(states) >= 20
    assert all({"emotion", "mouth", "speaking"} <= set(s) for s in states)
    assert any(s["speaking"] and s["mouth"] > 0.2 for s in states)  # the greeting is spoken
