"""Hibiki-Zero in the creature, on this CPU with tiny random checkpoints in the published
layout (real moshi code): the layout the writer produces, the torch backend running it
in-process (conditioned, its sampling defaults, EOS a marker and never text), the MLX
backend's clear refusal, and the batched model server giving each translation session the
stream it would get alone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_module
from tests.hibiki_support import source_speech
from tests.model_server_support import (
    WireClient,
    assert_same_stream,
    cli,
    opus_pages,
    reference,
    run_schedule,
    sounds,
)
from track2_voice.backends.base import BackendError
from track2_voice.config import VoiceConfig
from track2_voice.events import PassageEnded

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def hibiki(hibiki_tiny) -> Path:
    """The session's tiny Hibiki-Zero checkpoint (conftest; ``hibiki_eos`` is there too)."""
    return hibiki_tiny


def torch_backend(repo: Path, **sampling):
    from track2_voice.backends.torch_backend import TorchBackend

    cfg = VoiceConfig.model_validate(
        {"backend": "torch", "torch": {"hf_repo": str(repo), "device": "cpu"}, "sampling": sampling}
    )
    b = TorchBackend(cfg)
    b.start()
    return b


def test_tiny_checkpoint_has_hibiki_zeros_published_layout(hibiki):
    names = {p.name for p in hibiki.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "mimi-pytorch-e351c8d8@125.safetensors",
        "tokenizer_spm_48k_multi6_2.model",
    } <= names
    cfg = json.loads((hibiki / "config.json").read_text())
    assert cfg["model_type"] == "hibiki"
    assert "very_good" in cfg["conditioners"]["description"]["lut"]["possible_values"]
    assert cfg["fuser"]["sum"] == ["description"]
    assert (cfg["kv_repeat"], cfg["positional_embedding"]) == (2, "rope_concat")
    assert cfg["depformer_norm"] and len(cfg["depformer_weights_per_step_schedule"]) == 16
    assert (cfg["n_q"], cfg["dep_q"], max(cfg["delays"])) == (32, 16, 2)
    assert set(cfg["lm_gen_config"]) == {"temp", "temp_text", "top_k", "top_k_text"}
    # file names are relative (a moved directory still loads), and Kyutai's loader takes it
    from moshi.models import loaders

    from track2_voice.backends.torch_backend import local_checkpoint_args

    info = loaders.CheckpointInfo.from_hf_repo(str(hibiki), **local_checkpoint_args(hibiki))
    assert info.model_type == "hibiki" and info.lm_gen_config == cfg["lm_gen_config"]


def test_full_size_is_hibiki_zero_3b(capsys):
    assert cli("checkpoint", "random", "unused", "--model", "hibiki", "--size", "full",
               "--dry-run") == 0  # fmt: skip
    info = json.loads(capsys.readouterr().out)
    assert (info["dim"], info["layers"], info["text_card"]) == (2048, 28, 48000)
    assert 3.0e9 < info["lm_parameters"] < 3.3e9  # "3B", bfloat16 about 6.3 GB
    assert info["lm_dtype"] == "bfloat16"


def test_torch_backend_translates_in_process(hibiki, speech_pcm):
    b = torch_backend(hibiki)
    try:
        assert b.kind.translates
        # conditioned on "very_good" (moshi's get_condition_tensors for model_type hibiki)
        assert set(b.lm_gen.condition_tensors) == {"description"}
        # the checkpoint's sampling defaults, as Kyutai's server uses them
        lm_gen = json.loads((hibiki / "config.json").read_text())["lm_gen_config"]
        assert (b.sampling.temp_text, b.sampling.top_k_text) == (
            lm_gen["temp_text"],
            lm_gen["top_k_text"],
        )
        frames = speech_pcm[: 40 * 1920].reshape(40, 1920)
        results = [b.step(f) for f in frames]
    finally:
        b.close()
    texts = [r.text for r in results if r.text]
    loud = [r for r in results if float(np.sqrt(np.mean(r.pcm**2))) > 1e-3]
    assert len(texts) > 5, texts  # it streams text ...
    assert len(loud) > 20  # ... and audio
    assert all("</s>" not in t for t in texts)


def test_config_keys_win_over_the_checkpoints_sampling_defaults(hibiki):
    b = torch_backend(hibiki, temp_text=0.3)
    try:
        lm_gen = json.loads((hibiki / "config.json").read_text())["lm_gen_config"]
        assert b.sampling.temp_text == 0.3
        assert b.sampling.top_k_text == lm_gen["top_k_text"]
    finally:
        b.close()


def test_end_of_passage_is_a_marker_never_text(hibiki_eos):
    b = torch_backend(hibiki_eos)
    try:
        results = [b.step(f) for f in source_speech(40, seed=1)]
    finally:
        b.close()
    ends = [r for r in results if any(isinstance(e, PassageEnded) for e in r.events)]
    assert b.passages_ended == len(ends) > 0
    assert all(r.text is None for r in ends)
    assert all("</s>" not in (r.text or "") for r in results)


def test_mlx_backend_refuses_hibiki_zeros_layout_clearly(hibiki):
    require_module("moshi_mlx")
    from track2_voice.backends.mlx_backend import MlxBackend
    from track2_voice.config import MlxConfig

    # moshi_mlx reads MLX weights; a config.json is all the check looks at
    mlx_dir = hibiki.parent / "as-mlx"
    mlx_dir.mkdir(exist_ok=True)
    cfg = json.loads((hibiki / "config.json").read_text())
    (mlx_dir / "config.json").write_text(json.dumps(cfg))
    for name in (cfg["moshi_name"], cfg["tokenizer_name"], cfg["mimi_name"]):
        (mlx_dir / name).write_bytes((hibiki / name).read_bytes())
    with pytest.raises(BackendError) as e:
        MlxBackend(MlxConfig(hf_repo=str(mlx_dir))).start()
    msg = str(e.value)
    assert "moshi_mlx cannot run" in msg and "kv_repeat 2" in msg and "rope_concat" in msg
    assert "torch" in msg


def test_checkpoint_tiny_hibiki_for_mlx_is_one_clear_line(tmp_path, capsys):
    assert cli("checkpoint", "tiny", str(tmp_path / "x"), "--model", "hibiki") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "moshi_mlx cannot run" in err[0] and "--backend torch" in err[0]


# -- batched ----------------------------------------------------------------------------------


def test_batched_translation_sessions_equal_unbatched_slot_by_slot(hibiki):
    from track2_voice.model_server.engine import BatchEngine

    n = 16
    inputs = {slot: sounds(n, seed=slot + 20) for slot in (0, 1, 3)}
    starts = {0: 0, 1: 2, 3: 5}  # joined at different steps; slot 2 stays idle
    eng = BatchEngine.load(hibiki, 4)
    got = run_schedule(eng, {s: (starts[s], inputs[s]) for s in inputs}, 5 + n)
    streams = []
    for slot, frames in inputs.items():
        assert_same_stream(got[slot], reference(hibiki, frames))
        streams.append(tuple(tuple(o.tokens) for o in got[slot] if o.tokens is not None))
    assert len(set(streams)) == len(streams)  # different sources, different translations


def test_model_server_takes_the_checkpoints_sampling_and_sends_eos_as_hibiki_does(hibiki_eos):
    """Kyutai's hibiki-zero serve sends EOS as the text </s>: the model server does too (for
    translation models only), and its session defaults come from lm_gen_config unless a
    flag set them."""

    from track2_voice.model_server.options import ServerOptions
    from track2_voice.model_server.server import ModelServer

    # the client sends its 30 frames at once: the inbox holds them all (none dropped)
    opts = ServerOptions(
        checkpoint=str(hibiki_eos), slots=2, port=0, open_access=True, input_queue_frames=64
    )
    lm_gen = json.loads((hibiki_eos / "config.json").read_text())["lm_gen_config"]
    with ModelServer(opts) as srv:
        d = srv.session_defaults
        assert (d.temp_text, d.top_k_text, d.temp, d.top_k) == (
            lm_gen["temp_text"],
            lm_gen["top_k_text"],
            lm_gen["temp"],
            lm_gen["top_k"],
        )
        client = WireClient(srv.url())
        pages, _ = opus_pages(source_speech(30, seed=2))
        asyncio.run(client.run(pages, None, until=lambda c: "</s>" in c.texts, tail_s=30))
    assert "</s>" in client.texts, client.texts  # the end marker, as its own text message
