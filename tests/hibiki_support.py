"""Tiny Hibiki-Zero-layout checkpoints for the interpreter tests, written by the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tests.model_server_support import cli
from track2_voice.texttap import EOS_ID


def write_tiny_hibiki(d: Path, seed: int = 3) -> Path:
    assert cli("checkpoint", "tiny", str(d), "--model", "hibiki", "--backend", "torch",
               "--seed", str(seed)) == 0  # fmt: skip
    return d


def with_frequent_eos(src: Path, dst: Path, lead: float = 2.0) -> Path:
    """A copy whose text head scores EOS above the usual best text logit (by ``lead``) along
    the direction the model's hidden states share: the random model then ends a passage
    in about one frame of three, and says other pieces in between, so the end-of-passage
    path runs in a few frames (a real Hibiki ends one after each translated sentence). The
    direction is measured on the model itself, over a few frames of ``source_speech``."""
    import torch
    from moshi.models import LMGen
    from safetensors.torch import load_file, save_file

    from track2_voice.backends.model_kind import ModelKind, condition_tensors
    from track2_voice.model_server.engine import load_model

    m = load_model(src, "cpu", torch.float32)
    hidden: list = []
    best: list = []
    m.lm.out_norm.register_forward_hook(lambda _m, _i, out: hidden.append(out[0, 0].clone()))
    gen = LMGen(
        m.lm,
        temp=0,
        temp_text=0,
        condition_tensors=condition_tensors(ModelKind.HIBIKI, m.lm, 1),
        on_text_logits_hook=lambda logits: best.append(float(logits.max())),
    )
    with torch.no_grad(), gen.streaming(1), m.mimi.streaming(1):
        for f in source_speech(20, seed=99):
            gen.step(m.mimi.encode(torch.from_numpy(f)[None, None]))
    h = torch.stack(hidden[3:])
    u = h.mean(0) / h.mean(0).norm()
    along = float((h @ u).mean())
    target = float(np.mean(best[3:])) + lead
    shutil.copytree(src, dst)
    weights = dst / "model.safetensors"
    state = load_file(str(weights))
    state["text_linear.weight"][EOS_ID] = u * (target / along)
    save_file(state, str(weights))
    return dst


def source_speech(n_frames: int, seed: int = 0) -> np.ndarray:
    """Frames of a voiced, syllable-paced sound (a stand-in for the visitor's speech that the
    tiny Mimi hears as changing input)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames * 1920) / 24000
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    voiced = np.sin(2 * np.pi * np.cumsum(f0) / 24000)
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
    x = 0.2 * voiced * syllables + 0.01 * rng.standard_normal(t.size)
    return x.astype(np.float32).reshape(n_frames, 1920)
