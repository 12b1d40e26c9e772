"""The replay scene end to end: the shipped greeting runs through the real fast loop."""

from __future__ import annotations

import json

import numpy as np

from orchestrator.bus import Bus
from track2_voice.audio.devices import FileSource, frames_of
from track2_voice.audio.scene import load_scene
from track2_voice.backends.replay import ReplayBackend
from track2_voice.config import VoiceConfig
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE
from track2_voice.loop import FastLoop


class ArraySource(FileSource):
    """A FileSource fed from memory (the test's own audio), not paced."""

    def __init__(self, pcm: np.ndarray) -> None:  # noqa: D107
        self.realtime = False
        self.samples = pcm
        self._frames = frames_of(pcm)
        self._i = 0
        self._t0 = None


def run_scene(user_pcm: np.ndarray):
    hub = Bus()
    sub = hub.subscribe("test", 100_000)
    loop = FastLoop(ReplayBackend("greeting"), ArraySource(user_pcm), events=hub, cfg=VoiceConfig())
    # the VAD runs on its own thread; pace the file gently so it keeps up like real time would
    loop.run(stop_when_finished=True)
    loop.close()
    return sub.drain()


def test_shipped_scene_has_the_task_line_and_audio():
    scene = load_scene("greeting")
    assert "I'll get it for you" in scene.text
    for line in scene.lines:
        assert len(line.frames) > 5 and line.pieces
        assert np.abs(np.concatenate(line.frames)).max() > 0.3


def test_scene_plays_every_line_with_text_and_mouth_and_ends():
    silence = np.zeros(SAMPLE_RATE * 30, np.float32)
    events = run_scene(silence)
    frames = [e for e in events if e.kind == "frame"]
    text = "".join(e.text for e in frames if e.text)
    assert "Sure, I'll get it for you." in text
    assert max(e.mouth for e in frames) > 0.5
    kinds = [e.kind for e in events]
    assert kinds.count("scene_line") == 4 and "scene_end" in kinds
    starts = [e.start for e in events if e.kind == "scene_line"]
    assert starts[1] == "timeout"  # nobody spoke, so the task line waited for its timeout


def test_a_line_waits_for_the_user_and_starts_when_they_stop(speech_pcm):
    # 5 s of silence (line 1 plays), then the user speaks, then silence
    user = np.concatenate(
        [np.zeros(SAMPLE_RATE * 5, np.float32), speech_pcm, np.zeros(SAMPLE_RATE * 12, np.float32)]
    )
    events = run_scene(user)
    kinds = [e.kind for e in events]
    assert "user_speech_started" in kinds and "user_speech_ended" in kinds
    line2 = next(e for e in events if e.kind == "scene_line" and e.line == 1)
    ended = next(e for e in events if e.kind == "user_speech_ended")
    assert line2.start == "user"
    assert line2.index >= ended.index


def test_demo_once_exits_zero_and_its_record_holds_the_scene_text(demo_once):
    r, rec = demo_once
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    text = "".join(x.get("text", "") for x in lines if x["kind"] == "frame")
    assert "Hello there!" in text and "get it for you" in text
    assert any(x["kind"] == "scene_end" for x in lines)
    assert "get it for you" in r.stdout  # the terminal view shows the words
    words = [x["text"] for x in lines if x["kind"] == "user_word"]
    assert " ".join(words) == "Could you bring me the red cup from the table?"  # the user's side


def test_frames_are_1920_samples():
    scene = load_scene("greeting")
    assert all(f.shape == (FRAME_SAMPLES,) for line in scene.lines for f in line.frames)
