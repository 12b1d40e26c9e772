"""The creature's remote backend holds a translation session with Kyutai's own server,
``hibiki-zero serve`` (the ``hibiki-zero`` 0.0.4 package, unchanged), on a tiny
Hibiki-Zero-layout checkpoint: real process, real WebSocket, the real fast loop. The peer's
CUDA-only spots are neutralised by the test launcher (``track2_voice.devtools.
hibiki_server_cpu``) and nowhere else. The checkpoint ends passages often, so the server's
``</s>`` text is seen to become a marker event and never a caption.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import require_module
from tests.hibiki_support import source_speech
from tests.model_server_support import remote_session
from track2_voice.config import VoiceConfig
from track2_voice.events import DiscreteEvent, FrameEvent, PassageEnded

pytestmark = pytest.mark.torch

SERVER_START_S = 120.0  # a new process importing torch, on a loaded 2-CPU machine
SOURCE_FRAMES = 40  # 3.2 s of the visitor's speech
DELAY = 2  # Hibiki-Zero's acoustic delay: the first two steps generate no audio yet
STEP_LINE = re.compile(r"frame (\d+) handled in ([\d.]+)ms")


@pytest.fixture(scope="module")
def hibiki_zero_server(hibiki_eos):
    require_module("torch")
    require_module("moshi")
    require_module("typer")  # hibiki-zero's CLI imports it, and IPython, at start
    require_module("IPython")
    require_module("hibiki_zero")
    from track2_voice.devtools.hibiki_server_cpu import LocalHibikiServer

    srv = LocalHibikiServer(hibiki_eos, threads=1).start(SERVER_START_S)
    yield srv
    srv.stop()


def test_remote_backend_holds_a_session_with_hibiki_zero_serve(hibiki_zero_server, tmp_path):
    wav = tmp_path / "visitor.wav"
    sf.write(wav, source_speech(SOURCE_FRAMES, seed=4).reshape(-1), 24000)
    cfg = VoiceConfig(backend="remote")
    cfg.remote.url = hibiki_zero_server.url
    run = remote_session(cfg, wav, behind=DELAY)
    stats, st, n, events = run.stats, run.backend, run.frames, run.events
    frames = [e for e in events if isinstance(e, FrameEvent)]
    kinds = [e.kind for e in events if isinstance(e, DiscreteEvent)]
    assert stats.frames == n and stats.errors == 0
    assert "connected" in kinds and "disconnected" not in kinds
    assert st["sent_frames"] == n
    # one translated frame back per source frame, less Hibiki-Zero's acoustic delay
    assert st["received_frames"] >= n - DELAY
    # Kyutai's server stepped its model once per frame it received (its own log says so)
    steps = [float(ms) for _, ms in STEP_LINE.findall(hibiki_zero_server.log())]
    assert len(steps) >= n - 2
    # translated text pieces, and the server's </s> became markers, never text
    texts = [f.text for f in frames if f.text]
    assert texts and all("</s>" not in t for t in texts)
    ends = [e for e in events if isinstance(e, PassageEnded)]
    assert ends and st["passages_ended"] == len(ends)
    # the voice came back (the mouth has something to follow)
    assert sum(1 for f in frames if f.rms_db > -80.0) >= 3
    print("hibiki-zero serve ms/frame (median of its log):", np.median(steps))


def test_launcher_neutralises_only_the_cuda_guard():
    """torch itself is untouched: moshi's own checks still see no CUDA here."""
    torch = require_module("torch")
    require_module("typer")
    require_module("IPython")
    require_module("hibiki_zero")
    import hibiki_zero.run as run

    from track2_voice.devtools.hibiki_server_cpu import patch_hibiki, seed_cpu

    before = torch.cuda.is_available()
    original_torch = run.torch
    try:
        patch_hibiki(float32=False)
        assert torch.cuda.is_available() == before  # the real module: unchanged
        if not before:
            assert run.torch.cuda.is_available()  # the CLI guard's view
            assert run.torch.float16 is torch.float16  # everything else is torch's
            assert run.seed_all is seed_cpu
    finally:
        run.torch = original_torch


def test_offline_config_points_mimi_config_at_the_file(hibiki_tiny, tmp_path):
    import json

    from track2_voice.devtools.hibiki_server_cpu import offline_config

    ckpt = hibiki_tiny
    cfg = json.loads(offline_config(ckpt, tmp_path).read_text())
    assert cfg["mimi_config_name"] == f"file://{(ckpt / 'mimi_config.json').resolve()}"
    assert Path(cfg["mimi_config_name"].removeprefix("file://")).exists()


def test_run_interprets_through_hibiki_zero_serve(hibiki_zero_server, tmp_path):
    """`creature run --mode interpret --backend remote`: the brain follows the passages Kyutai's
    server ends (its ``</s>``), records their timing, and acts on none of the words."""
    import json

    from tests.hibiki_support import cli

    wav = tmp_path / "visitor.wav"
    sf.write(wav, source_speech(SOURCE_FRAMES, seed=5).reshape(-1), 24000)
    record = tmp_path / "interpret.jsonl"
    assert cli("run", "--mode", "interpret", "--backend", "remote",
               "--url", hibiki_zero_server.url, "--input", str(wav), "--record", str(record),
               "--set", f"state_dir={tmp_path / 'state'}",
               "--set", "slow_loop.robot.enabled=false") == 0  # fmt: skip
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    kinds = [x["kind"] for x in lines]
    assert "connected" in kinds and "passage_end" in kinds
    passages = [x for x in lines if x["kind"] == "translation"]
    assert any(p["ended_by"] == "eos" for p in passages), passages
    assert "translation_started" in kinds
    assert "intent" not in kinds and "tool_call" not in kinds
