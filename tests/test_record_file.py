"""Reading a session record back: typed events, one clear line for a bad record, the turns
and their latency, and the VAD's account of when speech really ended."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orchestrator.analysis.record_file import RecordReadError, read_record
from orchestrator.analysis.turns import VOICE_DB, turns_of
from orchestrator.brain.calls import CallStatus
from orchestrator.brain.events import StateChanged, ToolStatusChanged
from tests.conftest import creature
from track2_voice.events import FrameEvent, UserSpeechEnded, UserSpeechStarted
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE


def frame(i: int, rms_db: float = -120.0, model_ms: float = 10.0) -> FrameEvent:
    return FrameEvent(
        index=i,
        t=100.0 + 0.08 * i,
        mouth=0.0,
        rms_db=rms_db,
        text=None,
        model_ms=model_ms,
        overhead_ms=0.5,
    )


def write(path, lines) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_lines_become_typed_events_and_unknown_kinds_are_counted(tmp_path) -> None:
    p = tmp_path / "r.jsonl"
    write(p, [frame(0).to_dict(),
              {"kind": "state", "index": 0, "t": 100.0, "from": "idle", "to": "speaking",
               "trigger": "creature_started"},
              {"kind": "tool_status", "index": 0, "t": 100.1, "id": "c", "status": "running",
               "reason": None, "action": "pick_up", "source": "r"},
              {"kind": "from_the_future", "t": 1.0},
              {"kind": "record_dropped", "count": 3}])  # fmt: skip
    rec = read_record(p)
    f, state, status = rec.events
    assert isinstance(f, FrameEvent) and f.to_dict() == frame(0).to_dict()
    assert isinstance(state, StateChanged) and (state.src, state.dst) == ("idle", "speaking")
    assert isinstance(status, ToolStatusChanged) and status.status is CallStatus.RUNNING
    assert rec.unknown == {"from_the_future": 1} and rec.record_dropped == 3


def test_a_bad_line_names_file_and_line_and_a_cut_last_line_is_skipped(tmp_path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(frame(0).to_dict()) + "\n{not json\n" + json.dumps(frame(1).to_dict()))
    with pytest.raises(RecordReadError, match=r"bad.jsonl:2: not JSON"):
        read_record(p)
    p.write_text(json.dumps({"kind": "frame", "index": 0, "t": 1.0}) + "\n")
    with pytest.raises(RecordReadError, match=r":1: a 'frame' line: missing key 'mouth'"):
        read_record(p)
    p.write_text(json.dumps(frame(0).to_dict()) + '\n{"kind": "fra')
    rec = read_record(p)
    assert rec.truncated_last_line and len(rec.events) == 1
    r = creature("report", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and "missing.jsonl: no such record file" in r.stderr
    assert "Traceback" not in r.stderr


def test_turn_latency_runs_from_the_end_of_speech_to_the_first_audible_frame() -> None:
    events = [
        frame(0),
        UserSpeechStarted(index=1, t=100.08, probability=0.9),
        frame(1, -20.0),  # the creature talks over the user...
        UserSpeechEnded(index=5, t=100.4, probability=0.1, silence_ms=320.0),
        frame(5, -20.0),  # ...(an overlap); this frame was made as the user stopped
        frame(6, VOICE_DB - 1),  # not loud enough to count
        frame(7, -30.0),  # the first audio after the end
        UserSpeechStarted(index=8, t=100.64, probability=0.9),
        UserSpeechEnded(index=9, t=100.72, probability=0.1),  # no silence_ms: an old record
        UserSpeechStarted(index=10, t=100.8, probability=0.9),  # the user again: no reply
    ]
    first, second, third = turns_of(events)
    # speech ended at 100.4 - 0.32; frame 7 went out at 100.56 + 10.5 ms
    assert first.latency_ms == pytest.approx(490.5, abs=0.05) and first.overlap
    assert first.latency_after_vad_ms == pytest.approx(170.5, abs=0.05)
    assert first.reply_index == 7
    assert second.latency_ms is None and second.speech_end_t == 100.72
    assert third.open and third.user_start_t == 100.8 and third.latency_ms is None  # still talking


def test_the_vad_says_how_long_before_its_decision_speech_ended(speech_pcm) -> None:
    """Real speech then silence through the detector: ``t - silence_ms`` lands near the last
    loud 10 ms of the file: within 1.5 frames (Silero's probability falls a chunk or two
    after the energy does), against the 480 ms of its decision."""
    from track2_voice.vad import UserSpeechWorker

    pcm = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), speech_pcm,
                          np.zeros(SAMPLE_RATE * 2, np.float32)])  # fmt: skip
    win = SAMPLE_RATE // 100
    loud = [i for i in range(0, len(pcm) - win, win)
            if 20 * np.log10(np.sqrt(np.mean(pcm[i:i + win] ** 2)) + 1e-9) > -40]  # fmt: skip
    speech_end_s = (loud[-1] + win) / SAMPLE_RATE
    got: list = []
    vad = UserSpeechWorker(got.append, inline=True)
    try:
        for i in range(len(pcm) // FRAME_SAMPLES):
            t_end = (i + 1) * FRAME_SAMPLES / SAMPLE_RATE  # the frame is complete at its end
            vad.hear(i, t_end, pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
    finally:
        vad.close()
    ended = [e for e in got if isinstance(e, UserSpeechEnded)]
    assert ended and ended[-1].silence_ms is not None and ended[-1].silence_ms >= 480
    estimate = ended[-1].t - ended[-1].silence_ms / 1000.0
    assert abs(estimate - speech_end_s) <= 0.12, (estimate, speech_end_s)
    assert ended[-1].t - speech_end_s > 0.4  # what the decision alone would have said


def test_every_event_kind_is_registered_once_and_documented():
    """The record reader reads what the registry holds; each kind is in the docs."""
    from orchestrator.analysis.record_file import BY_KIND
    from tests.conftest import ROOT

    docs = " ".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    undocumented = [k for k in BY_KIND if f"`{k}`" not in docs and f'"kind": "{k}"' not in docs]
    assert not undocumented
    assert {"frame", "error", "service_error", "tool_call", "user_word", "planner"} <= set(BY_KIND)


def test_a_second_class_with_a_known_kind_is_an_error_at_import():
    from dataclasses import dataclass
    from typing import ClassVar

    from track2_voice.events import DiscreteEvent, DuplicateEventKind

    with pytest.raises(DuplicateEventKind, match="'tool_call'"):

        @dataclass(slots=True, kw_only=True)
        class Impostor(DiscreteEvent):
            kind: ClassVar[str] = "tool_call"


def test_error_lines_read_back_as_what_wrote_them(tmp_path):
    from orchestrator.brain.events import ServiceError
    from track2_voice.events import VoiceError

    lines = [
        VoiceError(index=1, t=1.0, where="backend", error="step failed"),
        ServiceError(index=2, t=2.0, where="robot_channel", error="port busy"),
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in lines))
    assert [type(e) for e in read_record(path).events] == [VoiceError, ServiceError]


def test_the_report_of_an_offline_run_is_on_the_audio_clock_with_the_open_turn(
    speech_wav, tmp_path
) -> None:
    """``creature run`` reads a file as fast as the model allows: the report still spans the
    WAV's length (not the processing time), and a user still speaking when the file ends
    (no trailing silence) is a turn, open, with no reply."""
    import soundfile as sf

    pcm, rate = sf.read(speech_wav, dtype="float32")
    loud = np.flatnonzero(np.abs(pcm) > 0.05)
    cut = tmp_path / "no_tail.wav"
    sf.write(cut, pcm[: loud[-1] + 1], rate)
    seconds = (loud[-1] + 1) / rate
    rec, out = tmp_path / "r.jsonl", tmp_path / "r.json"
    r = creature("run", "--input", str(cut), "--record", str(rec))
    assert r.returncode == 0, r.stderr[-2000:]
    r = creature("report", str(rec), "-o", str(tmp_path / "r.html"), "--json", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["figures"]["duration_s"] == pytest.approx(seconds, abs=0.25)
    assert report["figures"]["turns"] == 1
    (turn,) = report["turns"]
    assert turn["open"] and turn["latency_ms"] is None
