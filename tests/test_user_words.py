"""The user's words everywhere they help: record lines read back, the report's transcript and
timeline, replay, the face's captions and the word latency metric."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.analysis.record_file import parse_line, read_record
from orchestrator.analysis.user_words import MicClockMap, user_lines, word_latency_s
from orchestrator.brain.captions import Captions
from orchestrator.runtime.metrics import CreatureMetrics
from tests.conftest import creature, espeak_wav
from track2_voice.events import FrameEvent, UserWord
from track2_voice.frames import FRAME_SECONDS


def frame(i: int, t: float, text: str | None = None) -> FrameEvent:
    return FrameEvent(
        index=i, t=t, mouth=0.0, rms_db=-120.0, text=text, model_ms=1.0, overhead_ms=0.1
    )


def word(text, start, end, t, final=True) -> UserWord:
    return UserWord(index=int(end / FRAME_SECONDS), t=t, text=text, start=start, end=end,
                    final=final, source="pocketsphinx")  # fmt: skip


def test_a_user_word_line_reads_back_as_the_same_event():
    w = word("cup", 1.2, 1.5, 101.8, final=False)
    line = json.loads(json.dumps(w.to_dict()))
    assert line["kind"] == "user_word" and line["final"] is False
    assert parse_line(line, "rec:1") == w


def test_a_word_is_placed_by_the_time_of_the_frame_it_ended_in():
    clock = MicClockMap()
    for i in range(30):  # frame i complete at 100 + (i + 1) * 0.08 (+ 5 ms late)
        clock.frame(frame(i, 100.0 + (i + 1) * FRAME_SECONDS + 0.005))
    w = word("cup", 1.0, 1.5, t=100.0 + 1.5 + 0.3)
    assert word_latency_s(w, clock) == pytest.approx(0.3 - 0.005)
    assert word_latency_s(word("x", 5.0, 9.0, 200.0), clock) is None  # frame never seen


def test_the_metric_observes_word_end_to_event_latency_by_finality():
    m = CreatureMetrics(clock=lambda: 0.0)
    for i in range(30):
        m.observe(frame(i, 100.0 + (i + 1) * FRAME_SECONDS))
    m.observe(word("cup", 1.0, 1.5, t=101.7, final=False))
    m.observe(word("cup", 1.0, 1.5, t=102.5, final=True))
    got = {}
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            if s.name == "creature_user_word_latency_seconds_sum":
                got[s.labels["final"]] = s.value
    assert got == {"false": pytest.approx(0.2), "true": pytest.approx(1.0)}


def test_user_lines_group_final_words_on_the_records_clock():
    events = [frame(i, 10.0 + (i + 1) * FRAME_SECONDS) for i in range(60)]
    events += [
        word("bring", 0.5, 0.8, 11.0, final=False),  # partials are not the transcript
        word("bring", 0.5, 0.8, 11.5),
        word("it", 0.9, 1.0, 11.5),
        word("stop", 3.0, 3.3, 13.6),
    ]
    lines = user_lines(events)
    assert [x.text for x in lines] == ["bring it", "stop"]
    assert lines[0].start == pytest.approx(10.5) and lines[1].end == pytest.approx(13.3)


def test_captions_show_partials_replaced_by_finals_and_the_newest_side():
    c = Captions("both", hold_s=2.0)
    c.handle(word("could", 0.5, 0.7, 10.0, final=False))
    c.handle(word("good", 0.5, 0.7, 10.1, final=False))  # a revised hypothesis
    c.handle(word("you", 0.8, 0.9, 10.2, final=False))
    assert c.caption(10.2) == ("good you", "user")
    c.handle(word("could", 0.5, 0.7, 10.4))
    c.handle(word("you", 0.8, 0.9, 10.4))
    assert c.caption(10.4) == ("could you", "user")
    c.handle(frame(20, 10.6, " Sure,"))
    c.handle(frame(21, 10.7, " I'll get it."))
    assert c.caption(10.7) == ("Sure, I'll get it.", "creature")
    assert c.caption(20.0) is None  # held for a while, then gone
    only_user = Captions("user")
    only_user.handle(frame(1, 1.0, " hello"))
    assert only_user.caption(1.0) is None
    assert Captions("none").add_to({"t": 1.0, "caption": ""}) == {"t": 1.0, "caption": ""}
    # an interpreter's caption is never replaced
    assert c.add_to({"t": 10.7, "caption": "translated"})["caption"] == "translated"


def test_a_session_on_speech_records_reports_and_replays_the_users_words(tmp_path):
    wav = espeak_wav(tmp_path / "user.wav", "turn on the light. stop.")
    rec = tmp_path / "rec.jsonl"
    state = f"state_dir={tmp_path / 'state'}"
    r = creature("run", "--input", str(wav), "--record", str(rec), "--set", state,
                 "--set", "voice.transcript.backend=pocketsphinx", timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    words = read_record(rec).of(UserWord)
    assert any(w.final for w in words) and any(not w.final for w in words)
    r = creature("report", str(rec), "-o", str(tmp_path / "r.html"), "--json",
                 str(tmp_path / "r.json"), timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    sides = {line["who"] for line in report["transcript"]}
    assert sides == {"user", "creature"}, report["transcript"]
    html = (tmp_path / "r.html").read_text()
    assert "Transcript: both sides" in html
    replayed = tmp_path / "replayed.jsonl"
    r = creature("replay", str(rec), "--no-face", "--speed", "8", "--record-to", str(replayed),
                 "--set", state, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    again = read_record(replayed).of(UserWord)
    assert [(w.text, w.start, w.final) for w in again] == [
        (w.text, w.start, w.final) for w in words
    ]


def test_the_face_captions_the_users_words_in_a_replayed_session(tmp_path):
    """``face.captions: user``: a replay of a record with the user's words sends face
    messages whose caption is those words, ``caption_by: user``; the creature's own text is
    not captioned."""
    import os
    import subprocess
    import sys

    import httpx
    from websockets.sync.client import connect

    from tests.conftest import ROOT
    from track2_voice.devtools.moshi_server_cpu import free_port

    t0, token, port = 1000.0, "captions-token-1234", free_port()
    lines = [{"kind": "loop_started", "index": 0, "t": t0, "backend": "replay"}]
    for i in range(100):  # 8 s of frames; the user asks at 3 s, the creature answers at 5 s
        t = t0 + (i + 1) * FRAME_SECONDS
        lines.append(frame(i, t, " Sure" if i == 62 else None).to_dict())
        if i == 40:
            for text, start, end in (("bring", 2.9, 3.1), ("the", 3.1, 3.2), ("cup", 3.2, 3.4)):
                lines.append(word(text, start, end, t).to_dict())
    lines.append({"kind": "loop_stopped", "index": 100, "t": t0 + 8.1, "dropped": {}})
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "replay", str(rec), "--speed", "1",
         "--face-host", "127.0.0.1", "--face-port", str(port), "--set", "face.captions=user",
         "--set", "phone.tls=false", "--set", "phone.qr=false", "--set", f"phone.token={token}",
         "--set", f"state_dir={tmp_path / 'state'}"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    got: list[dict] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the face server never answered"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with connect(f"ws://127.0.0.1:{port}/ws/face?token={token}") as ws:
            end = time.monotonic() + 30
            while time.monotonic() < end and proc.poll() is None:
                try:
                    got.append(json.loads(ws.recv(timeout=1.0)))
                except TimeoutError:
                    continue
                except Exception:  # the replay ended and closed the face
                    break
    finally:
        proc.wait(timeout=60)
    captions = [(m.get("caption"), m.get("caption_by")) for m in got if m.get("caption")]
    assert ("bring the cup", "user") in captions, captions[:5]
    assert all(by == "user" for _, by in captions)
    assert not any("Sure" in (c or "") for c, _ in captions)
