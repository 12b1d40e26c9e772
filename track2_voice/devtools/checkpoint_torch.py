"""A tiny random PyTorch Moshi checkpoint in the published repo layout.

It speaks noise, but it runs the real ``moshi`` code: our ``torch`` backend and the official
``python -m moshi.server`` both load it. That lets tests and offline labs exercise the whole
GPU-host path (loaders, LMGen streaming, the wire protocol) on a CPU without downloading 15 GB.

Layout (as in ``kyutai/moshiko-pytorch-bf16``, plus a small Mimi config)::

    config.json                 LM config + file names (``file://`` absolute paths)
    model.safetensors           the LM weights
    mimi.safetensors            a small Mimi codec
    mimi_config.json            its config (read through ``mimi_config_name``)
    tokenizer_spm_32k_3.model   a SentencePiece model trained on a few sentences

``config.json`` names the other files with ``file://`` absolute paths, because
``CheckpointInfo.from_hf_repo`` would otherwise look them up on the hub. Our backend also
finds them by base name when the directory has been moved.
"""

from __future__ import annotations

import json
from pathlib import Path

from track2_voice.devtools.tiny_common import TOKENIZER_FILE, lm_config_dict, train_tokenizer

CONFIG_NAME = "config.json"
MOSHI_NAME = "model.safetensors"
MIMI_NAME = "mimi.safetensors"
MIMI_CONFIG_NAME = "mimi_config.json"
TOKENIZER_NAME = TOKENIZER_FILE  # the published name

# Text ids 0 and 3 are Moshi's padding; the trainer puts its <pad> piece at 3 to match.
AUDIO_BINS = 256  # codebook size of the tiny Mimi (the real one has 2048)
N_CODEBOOKS = 8  # audio codebooks per stream (as in Moshi 7B)
OUTPUT_GAIN = 2.0  # lifts the tiny decoder's output to about -36 dBFS (speech-like levels)
LAST_DECODER_CONV = 14  # index of SEANet's final conv in ``decoder.model`` for 4 ratios
CODEBOOK_SCALE = 3.0  # spread of the random Mimi centroids (decoded loudness varies with it)


def tiny_mimi_config(seed_dim: int = 64) -> dict:
    """A Mimi small enough to run at many times real time on a CPU core."""
    seanet = {
        "channels": 1,
        "dimension": seed_dim,
        "causal": True,
        "n_filters": 8,
        "n_residual_layers": 1,
        "activation": "ELU",
        "compress": 2,
        "dilation_base": 2,
        "disable_norm_outer_blocks": 0,
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 3,
        "norm": "none",
        "pad_mode": "constant",
        "ratios": [8, 6, 5, 4],
        "true_skip": True,
    }
    return {
        "sample_rate": 24000,
        "channels": 1,
        "frame_rate": 12.5,
        "seanet": seanet,
        "quantizer": {
            "dimension": 32,
            "n_q": N_CODEBOOKS,
            "bins": AUDIO_BINS,
            "input_dimension": seed_dim,
            "output_dimension": seed_dim,
        },
        "transformer": {
            "d_model": seed_dim,
            "num_heads": 4,
            "num_layers": 1,
            "causal": True,
            "layer_scale": 0.01,
            "context": 250,
            "conv_layout": True,
            "max_period": 10000,
            "gating": "none",
            "norm": "layer_norm",
            "positional_embedding": "rope",
            "dim_feedforward": 4 * seed_dim,
            "input_dimension": seed_dim,
            "output_dimensions": [seed_dim],
        },
    }


def tiny_lm_config(dim: int, layers: int, text_card: int) -> dict:
    """Moshi's architecture, tiny; the depformer is half as wide as the transformer."""
    dep_dim = max(32, dim // 2)
    return lm_config_dict(
        dim,
        layers,
        text_card,
        heads=max(1, dim // 32),
        dep_dim=dep_dim,
        dep_heads=max(1, dep_dim // 32),
        dep_ff=int(4.125 * dep_dim),
        card=AUDIO_BINS,
        depformer_layer_scale=None,
        depformer_gating="silu",
    )


def _audible_mimi_state(state: dict) -> dict:
    """Untrained Mimi codebooks are all zeros, so every code decodes to the same sound. Give
    them random centroids so that different codes give different (and differently loud)
    frames: the mouth then has something to follow."""
    import torch

    out = {}
    for k, v in state.items():
        if k.endswith("_codebook.embedding_sum"):
            v = torch.randn_like(v) * CODEBOOK_SCALE
        elif k.endswith("_codebook._initialized"):
            v = torch.ones_like(v)
        elif k.startswith("decoder.") and k.endswith(".bias"):
            v = torch.zeros_like(v)  # no bias: the sound follows the codes, not a constant
        if k.startswith(f"decoder.model.{LAST_DECODER_CONV}.") and k.endswith(".weight"):
            v = v * OUTPUT_GAIN
        out[k] = v.contiguous()
    return out


def write_tiny_torch_checkpoint(
    out: Path | str, dim: int = 128, layers: int = 2, seed: int = 0
) -> list[Path]:
    """Write the checkpoint into ``out`` (created) and return the files written."""
    import torch
    from moshi.models.loaders import get_mimi, get_moshi_lm
    from safetensors.torch import save_file

    if dim < 32 or dim % 32:
        raise ValueError(f"--dim must be a positive multiple of 32, got {dim}")
    if layers < 1:
        raise ValueError(f"--layers must be at least 1, got {layers}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    tok_path = out / TOKENIZER_NAME
    text_card = train_tokenizer(tok_path)

    mimi_cfg = tiny_mimi_config()
    mimi_cfg_path = out / MIMI_CONFIG_NAME
    mimi_cfg_path.write_text(json.dumps(mimi_cfg, indent=2))
    mimi = get_mimi(None, mimi_cfg, device="cpu", num_codebooks=N_CODEBOOKS)
    mimi_path = out / MIMI_NAME
    save_file(_audible_mimi_state(mimi.state_dict()), str(mimi_path))

    lm_cfg = tiny_lm_config(dim, layers, text_card)
    lm = get_moshi_lm(None, lm_kwargs=lm_cfg, device="cpu", dtype=torch.float32)
    lm_path = out / MOSHI_NAME
    save_file({k: v.contiguous() for k, v in lm.state_dict().items()}, str(lm_path))

    config = {
        **lm_cfg,
        "model_type": "moshi",
        "moshi_name": f"file://{lm_path}",
        "mimi_name": f"file://{mimi_path}",
        "mimi_config_name": f"file://{mimi_cfg_path}",
        "tokenizer_name": f"file://{tok_path}",
    }
    cfg_path = out / CONFIG_NAME
    cfg_path.write_text(json.dumps(config, indent=2))
    return [cfg_path, lm_path, mimi_path, mimi_cfg_path, tok_path]
