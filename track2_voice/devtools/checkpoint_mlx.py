"""Tiny random moshi_mlx checkpoints in the published repo layout.

Writes ``config.json``, ``model.safetensors`` (bf16) and optionally ``model.q4/q8.safetensors``,
``tokenizer_spm_32k_3.model`` and a small Mimi in PyTorch layout. Every loader that accepts a
published repo accepts this directory; it speaks noise, but through the real model code.
"""

from __future__ import annotations

import json
from pathlib import Path

from track2_voice.backends.tiny_mimi import TINY_MIMI
from track2_voice.devtools.tiny_common import (
    TINY_MIMI_FILE,
    TOKENIZER_FILE,
    lm_config_dict,
    train_tokenizer,
)

QUANT_GROUP = {4: 32, 8: 64}  # Kyutai's group sizes
WEIGHT_FILES = {None: "model.safetensors", 4: "model.q4.safetensors", 8: "model.q8.safetensors"}


def check_dims(dim: int, quantize: int | None) -> None:
    if dim < 64 or dim % 64:
        raise ValueError(f"--dim must be a multiple of 64 (got {dim})")
    # gated MLP hidden = 11*dim/4 must split into whole quantization groups
    if quantize is not None and (11 * dim // 4) % QUANT_GROUP[quantize]:
        need = 128 if quantize == 4 else 256
        raise ValueError(f"--dim must be a multiple of {need} for q{quantize} (got {dim})")


def write_tiny_mlx_checkpoint(
    out: Path, dim: int = 128, layers: int = 2, seed: int = 0, quantize: int | None = None
) -> list[Path]:
    """Write the checkpoint into ``out``; returns the files written."""
    import mlx.core as mx

    check_dims(dim, quantize)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text_card = train_tokenizer(out / TOKENIZER_FILE)
    cfg = lm_config_dict(
        dim,
        layers,
        text_card,
        model_type="moshi",
        moshi_name=WEIGHT_FILES[quantize],
        mimi_name=TINY_MIMI_FILE,
        tokenizer_name=TOKENIZER_FILE,
        mimi_config=dict(TINY_MIMI),
        tiny=True,
        quantize=quantize,
    )
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    mx.random.seed(seed)
    weights = _write_lm(out, cfg, quantize)
    return [out / TOKENIZER_FILE, out / "config.json", *weights, _write_mimi(out, cfg)]


def _write_lm(out: Path, cfg: dict, quantize: int | None) -> list[Path]:
    """Random LM weights in bf16 and, with ``quantize``, the same weights quantized too."""
    import mlx.core as mx
    import mlx.nn as nn
    from moshi_mlx import models

    lm = models.Lm(models.LmConfig.from_config_dict(cfg))
    lm.set_dtype(mx.bfloat16)
    mx.eval(lm.parameters())
    lm.save_weights(str(out / WEIGHT_FILES[None]))
    written = [out / WEIGHT_FILES[None]]
    if quantize is not None:
        nn.quantize(lm, bits=quantize, group_size=QUANT_GROUP[quantize])
        mx.eval(lm.parameters())
        lm.save_weights(str(out / WEIGHT_FILES[quantize]))
        written.append(out / WEIGHT_FILES[quantize])
    return written


def _write_mimi(out: Path, cfg: dict) -> Path:
    """A random small Mimi in PyTorch layout (as the published one is stored)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from moshi_mlx import models

    from track2_voice.backends.mlx_mimi import mimi_config, to_pytorch_layout

    mimi = models.mimi.Mimi(mimi_config(cfg["mimi_config"]))
    weights = dict(tree_flatten(mimi.parameters()))
    for k, v in weights.items():  # a codebook of zeros would map every frame to code 0
        if k.endswith("codebook.embedding_sum"):
            weights[k] = mx.random.normal(v.shape)
        elif k.endswith("codebook.cluster_usage") or k.endswith("codebook.initialized"):
            weights[k] = mx.ones(v.shape)
    mx.save_safetensors(str(out / TINY_MIMI_FILE), to_pytorch_layout(weights))
    return out / TINY_MIMI_FILE
