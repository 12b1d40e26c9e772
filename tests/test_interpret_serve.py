"""`creature serve --mode interpret` end to end: a tiny random Hibiki-Zero-layout checkpoint
in-process (real moshi code), a visitor's speech as the mic, a face client on the real
WebSocket. The face moves with the translated voice, shows who speaks and the caption, and
the record holds the passage timing; no tool call is made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.face_support import serve_face_states

pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hibiki(hibiki_tiny) -> Path:
    """The session's tiny Hibiki-Zero checkpoint (conftest)."""
    return hibiki_tiny


def test_serve_interprets_with_the_face_moving_and_records_the_timing(hibiki, speech_wav, tmp_path):
    record = tmp_path / "interpret.jsonl"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "orchestrator.cli", "serve", "--mode", "interpret",
         "--backend", "torch", "--hf-repo", str(hibiki), "--set", "voice.torch.device=cpu",
         "--input", str(speech_wav), "--record", str(record), "--no-tls",
         "--face-host", "127.0.0.1", "--face-port", "0", "--set", "phone.qr=false",
         "--set", "slow_loop.robot.port=0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    log: list[str] = []
    try:
        states = serve_face_states(proc, log, timeout_s=30)
        out, _ = proc.communicate(timeout=60)
        log.append(out)
        assert proc.returncode == 0, "".join(log)
    finally:
        proc.kill()
    assert len(states) >= 20
    assert any(s["mouth"] > 0.05 for s in states)  # the mouth follows the translated voice
    assert all(s["speaker"] in ("nobody", "visitor", "interpreter", "both") for s in states)
    assert any(s["speaker"] in ("visitor", "both") for s in states)  # the visitor was heard
    assert any(s["caption"] for s in states)  # the translation was shown
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    kinds = {x["kind"] for x in lines}
    assert {"user_speech_started", "translation_started", "translation"} <= kinds
    assert "tool_call" not in kinds and "intent" not in kinds
    (first,) = [x for x in lines if x["kind"] == "translation_started"][:1]
    assert first["passage"] == 1 and "lag_ms" in first
    passages = [x for x in lines if x["kind"] == "translation"]
    assert passages[-1]["end_t"] >= passages[-1]["first_audio_t"]
