"""The real moshi_mlx code path on tiny random checkpoints in the published repo layout."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import creature, require_module, write_tiny_mlx
from track2_voice.backends.base import BackendError
from track2_voice.backends.mlx_backend import QUANT_GROUP
from track2_voice.config import MlxConfig, RolloverConfig, SamplingConfig
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE

pytestmark = pytest.mark.mlx


def mlx_run(repo, src, *args: str, **kw):
    """``creature run --backend mlx`` on checkpoint ``repo`` with ``src`` as the microphone."""
    return creature(
        "run", "--backend", "mlx", "--hf-repo", str(repo), "--input", str(src), *args, **kw
    )


def backend(repo, quantize="auto", max_steps=3000, **roll):
    from track2_voice.backends.mlx_backend import MlxBackend

    b = MlxBackend(
        MlxConfig(hf_repo=str(repo), quantize=quantize),
        rollover=RolloverConfig(max_steps=max_steps, **roll),
    )
    b.start()
    return b


def test_tiny_checkpoint_has_the_published_layout(tiny_mlx):
    names = {p.name for p in tiny_mlx["q4"].iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "model.q4.safetensors",
        "tokenizer_spm_32k_3.model",
    } <= names
    cfg = json.loads((tiny_mlx["q4"] / "config.json").read_text())
    for key in (
        "dim",
        "text_card",
        "n_q",
        "dep_q",
        "delays",
        "moshi_name",
        "mimi_name",
        "tokenizer_name",
    ):
        assert key in cfg


@pytest.mark.parametrize("fmt", ["bf16", "q4"])
def test_loads_and_streams_text_and_audio(tiny_mlx, speech_pcm, fmt):
    b = backend(tiny_mlx[fmt])
    assert b.info["quantize"] == (4 if fmt == "q4" else "bf16")
    frames = [
        speech_pcm[i : i + FRAME_SAMPLES] for i in range(0, FRAME_SAMPLES * 12, FRAME_SAMPLES)
    ]
    results = [b.step(f.astype(np.float32)) for f in frames]
    assert all(r.pcm.shape == (FRAME_SAMPLES,) and r.pcm.dtype == np.float32 for r in results)
    texts = [r.text for r in results if r.text]
    assert texts, "a random model emits non-padding text tokens"
    assert all("\u2581" not in t for t in texts)  # SentencePiece markers became spaces
    assert np.abs(np.concatenate([r.pcm for r in results[3:]])).max() > 0  # audio after the delay
    b.close()


def test_text_tap_skips_padding_ids():
    from track2_voice.texttap import piece_text

    class Tok:
        def id_to_piece(self, i):
            return "\u2581cup" if i == 7 else "x"

    assert piece_text(Tok(), 0) is None and piece_text(Tok(), 3) is None
    assert piece_text(Tok(), 7) == " cup"


def test_repo_id_goes_through_the_hub_cache(tiny_mlx, tmp_path, speech_wav):
    """A repo id, resolved by huggingface_hub from its cache (offline), as a user's would be."""
    cache = tmp_path / "hub"
    repo = cache / "models--kyutai-lab--tiny-mlx-q4"
    commit = "0" * 40
    snap = repo / "snapshots" / commit
    shutil.copytree(tiny_mlx["q4"], snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    out = tmp_path / "out.wav"
    r = mlx_run(
        "kyutai-lab/tiny-mlx-q4",
        str(speech_wav),
        "--output",
        str(out),
        "--max-frames",
        "8",
        env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr
    assert "model.q4.safetensors" in r.stderr  # loaded the q4 weights named by config.json
    assert sf.info(str(out)).frames == 8 * FRAME_SAMPLES


def test_cli_run_writes_input_length_audio_and_one_line_per_frame(tiny_mlx, speech_wav, tmp_path):
    out, rec = tmp_path / "out.wav", tmp_path / "ev.jsonl"
    r = mlx_run(
        str(tiny_mlx["bf16"]),
        str(speech_wav),
        "--output",
        str(out),
        "--record",
        str(rec),
    )
    assert r.returncode == 0, r.stderr
    n_in = sf.info(str(speech_wav))
    in_samples = n_in.frames * SAMPLE_RATE / n_in.samplerate
    assert abs(sf.info(str(out)).frames - in_samples) <= FRAME_SAMPLES
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    frames = [x for x in lines if x["kind"] == "frame"]
    assert [f["index"] for f in frames] == list(range(len(frames)))
    assert len(frames) == -(-round(in_samples) // FRAME_SAMPLES)
    for f in frames:
        assert {"index", "t", "mouth", "model_ms", "overhead_ms", "missed"} <= f.keys()
    assert any("text" in f for f in frames)


def test_session_longer_than_the_step_budget_rolls_over_in_silence(tiny_mlx):
    # silence_db=0: every frame counts as quiet, so the rollover comes at the margin's start
    b = backend(tiny_mlx["bf16"], max_steps=24, margin_steps=8, silence_frames=2, silence_db=0.0)
    events = []
    for _ in range(70):  # almost three budgets
        events += b.step(np.zeros(FRAME_SAMPLES, np.float32)).events
    rolls = [e for e in events if e.kind == "rollover"]
    assert len(rolls) >= 3
    assert all(e.reason == "silence" and e.steps <= 24 for e in rolls)
    assert rolls[-1].total_steps == sum(e.steps for e in rolls)


def test_rollover_is_forced_at_the_budget_when_nobody_is_quiet(tiny_mlx, speech_pcm):
    b = backend(tiny_mlx["bf16"], max_steps=20, margin_steps=8, silence_frames=4, silence_db=-200.0)
    loud = np.clip(np.resize(speech_pcm, FRAME_SAMPLES) * 4, -1, 1).astype(np.float32)
    events = []
    for _ in range(45):
        events += b.step(loud).events
    rolls = [e for e in events if e.kind == "rollover"]
    assert rolls and all(e.reason == "budget" and e.steps == 19 for e in rolls)


def test_rollover_through_the_cli_is_recorded(tiny_mlx, tmp_path):
    src = tmp_path / "quiet.wav"
    sf.write(str(src), np.zeros(SAMPLE_RATE * 4, np.float32), SAMPLE_RATE)
    rec = tmp_path / "ev.jsonl"
    r = mlx_run(
        str(tiny_mlx["bf16"]),
        str(src),
        "--record",
        str(rec),
        "--max-steps",
        "20",
        "--set",
        "voice.rollover.margin_steps=10",
        "--set",
        "voice.rollover.silence_db=0",
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    assert sum(x["kind"] == "frame" for x in lines) == 50
    assert any(x["kind"] == "rollover" for x in lines)
    assert not any(x["kind"] == "error" for x in lines)


def test_missing_weights_name_the_file_and_the_directory(tiny_mlx, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_mlx["q4"], broken)
    (broken / "model.q4.safetensors").unlink()
    with pytest.raises(BackendError) as e:
        backend(broken, quantize=4)
    assert "model.q4.safetensors" in str(e.value) and str(broken) in str(e.value)
    r = mlx_run(
        str(broken),
        str(tiny_mlx["q4"] / "config.json"),
        "--quantize",
        "4",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_weights_of_the_wrong_format_are_explained(tiny_mlx, tmp_path):
    wrong = tmp_path / "wrong"
    shutil.copytree(tiny_mlx["bf16"], wrong)
    shutil.copy(wrong / "model.safetensors", wrong / "model.q4.safetensors")
    with pytest.raises(BackendError, match="do not fit a q4 model"):
        backend(wrong, quantize=4)


def test_not_a_repo_is_explained():
    with pytest.raises(BackendError, match="not/here: no such directory"):
        backend("/definitely/not/here")


def test_a_checkpoint_whose_warmup_token_is_42_still_starts(tmp_path, speech_wav):
    """dim 384, 3 layers, seed 99, q4: moshi_mlx's own ``Lm.warmup()`` samples token 42 and
    raises ValueError(42) (a canary in Kyutai's code); the backend must not call it (it runs
    its own warm-up steps), so ``creature run`` on this checkpoint works."""
    require_module("moshi_mlx")
    import mlx.core as mx
    import mlx.nn as nn
    from moshi_mlx import models

    d = tmp_path / "tiny-42"
    r = write_tiny_mlx(d, dim=384, layers=3, seed=99, quantize=4)
    assert r.returncode == 0, r.stderr
    # the canary fires on this checkpoint when loaded as the backend loads it
    mx.random.seed(SamplingConfig().seed)
    lm = models.Lm(models.LmConfig.from_config_dict(json.loads((d / "config.json").read_text())))
    lm.set_dtype(mx.bfloat16)
    nn.quantize(lm, bits=4, group_size=QUANT_GROUP[4])
    lm.load_weights(str(d / "model.q4.safetensors"), strict=True)
    with pytest.raises(ValueError, match="42"):
        lm.warmup()
    out = tmp_path / "out.wav"
    r = mlx_run(
        str(d),
        str(speech_wav),
        "--output",
        str(out),
        "--max-frames",
        "4",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert sf.info(out).frames == 4 * FRAME_SAMPLES
