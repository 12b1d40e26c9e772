"""A voice session is built, started, run and closed, in that order: building it (checking the
config, making the parts) starts no thread, so a config that fails later leaves nothing running;
closing it stops every thread that starting it started."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from orchestrator.config import load_config
from orchestrator.runtime.session_host import FaceHost
from orchestrator.runtime.voice_session import VoiceSession
from track2_voice.common.errors import ConfigError
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE

SETTLE_S = 5.0  # how long a stopped thread may take to end


def _cfg(tmp_path: Path, **extra):
    return load_config(
        overrides={
            "voice.backend": "replay",
            "voice.replay.scene": "greeting",
            "audio.output": str(tmp_path / "voice.wav"),  # a WAV sink writes on a thread
            "face.enabled": False,
            "state_dir": str(tmp_path / "state"),
            "slow_loop.robot.port": 0,
            "slow_loop.outbox.path": str(tmp_path / "outbox.sqlite3"),
            **extra,
        }
    )


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _wait_until_gone(before: set[threading.Thread]) -> set[threading.Thread]:
    deadline = time.monotonic() + SETTLE_S
    while (extra := _threads() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    return extra


def test_building_a_voice_session_starts_no_thread(tmp_path: Path) -> None:
    before = _threads()
    session = VoiceSession(_cfg(tmp_path), tmp_path / "record.jsonl")
    assert _threads() - before == set()
    assert session.loop is None and session.recorder is None
    assert not session.io.running
    assert not (tmp_path / "voice.wav").exists()  # the audio is opened by start, not here
    assert isinstance(session, FaceHost)  # what the face and the telephone bridge are given


def test_a_started_session_runs_and_close_stops_every_thread_it_started(tmp_path: Path) -> None:
    before = _threads()
    record = tmp_path / "record.jsonl"
    with VoiceSession(_cfg(tmp_path), record) as session:
        assert session.io.running
        assert {t.name for t in _threads() - before} >= {"creature-io", "wav-sink", "record"}
        session.start_slow()
        session.start_backend()
        stats = session.run(max_frames=5)
    assert stats.frames == 5
    assert _wait_until_gone(before) == set()
    assert '"loop_stopped"' in record.read_text()  # the recorder, closed last, wrote the end
    session.close()  # a second close does nothing


def test_a_session_that_fails_to_start_stops_what_had_started(tmp_path: Path) -> None:
    """The transcript's recogniser is checked by ``start`` after the I/O loop and the recorder
    started: the error is the config's, and nothing is left running."""
    wav = tmp_path / "user.wav"
    sf.write(wav, np.zeros(FRAME_SAMPLES * 4, dtype=np.float32), SAMPLE_RATE)
    cfg = _cfg(tmp_path, **{  # a file, not at real time: the recogniser runs in this process
        "audio.input": str(wav),
        "voice.transcript.backend": "pocketsphinx",
        "voice.transcript.pocketsphinx.hmm": str(tmp_path / "no-such-model"),
    })  # fmt: skip
    before = _threads()
    session = VoiceSession(cfg, tmp_path / "record.jsonl")
    with pytest.raises(ConfigError):
        session.start()
    assert _wait_until_gone(before) == set()
    assert not session.io.running
