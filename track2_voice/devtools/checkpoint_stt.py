"""Random-weight Kyutai STT checkpoints in the published PyTorch layout (kyutai/stt-1b-en_fr),
tiny, so the in-process transcript and the model server's STT slots run the real ``moshi``
code on this CPU without a download.

What makes a checkpoint an STT one is in ``config.json``, as Kyutai publishes it and as
delayed-streams-modeling's ``stt_from_file_pytorch.py`` loads it with ``CheckpointInfo``:

- ``model_type: "stt"``, an LM that only hears: ``n_q`` 32 input codebooks and ``dep_q`` 0
  (no depth transformer, no audio out), its text stream the transcript;
- ``stt_config``: ``audio_delay_seconds`` (the text trails the audio by this much: 0.5 s for
  stt-1b-en_fr) and ``audio_silence_prefix_seconds`` (silence fed before the audio);
- a SentencePiece tokenizer and Mimi under their published names.

Layout::

    config.json                              LM config + file names (relative) + stt_config
    model.safetensors                        the LM
    mimi-pytorch-e351c8d8@125.safetensors    Mimi (the tiny one: 32 codebooks of 256)
    mimi_config.json                         the small Mimi's config
    tokenizer_en_fr_audio_8000.model         SentencePiece, one piece per text id

    python -m track2_voice.devtools.checkpoint_stt OUT_DIR [--seed N] [--dim 64]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from track2_voice.devtools.checkpoint_random import (
    LM_NAME,
    MIMI_CONFIG_NAME,
    CheckpointError,
    write_checkpoint,
)

MODEL_TYPE = "stt"
MIMI_NAME = "mimi-pytorch-e351c8d8@125.safetensors"
TOKENIZER_NAME = "tokenizer_en_fr_audio_8000.model"
CODEBOOKS = 32  # the input codebooks stt-1b-en_fr hears
TINY_TEXT_CARD = 256
TINY_CARD = 256
STT_CONFIG = {"audio_delay_seconds": 0.5, "audio_silence_prefix_seconds": 0.0}


def stt_config(dim: int = 64, layers: int = 1) -> dict[str, Any]:
    """The whole config.json of a tiny STT checkpoint."""
    from track2_voice.devtools.checkpoint_torch import tiny_mimi_config

    if dim < 32 or dim % 32:
        raise CheckpointError(f"--dim must be a positive multiple of 32, got {dim}")
    mimi = tiny_mimi_config()
    mimi["quantizer"]["n_q"] = CODEBOOKS
    return {
        "dim": dim,
        "text_card": TINY_TEXT_CARD,
        "existing_text_padding_id": 3,
        "card": TINY_CARD,
        "n_q": CODEBOOKS,
        "dep_q": 0,
        "delays": [0] * (CODEBOOKS + 1),
        "num_heads": max(1, dim // 32),
        "num_layers": layers,
        "hidden_scale": 4.125,
        "causal": True,
        "layer_scale": None,
        "context": 750,
        "max_period": 100000,
        "gating": "silu",
        "norm": "rms_norm_f32",
        "positional_embedding": "rope",
        "depformer_dim": 32,
        "depformer_num_heads": 1,
        "depformer_num_layers": 1,
        "depformer_dim_feedforward": 128,
        "depformer_multi_linear": True,
        "depformer_pos_emb": "none",
        "depformer_weights_per_step": True,
        "depformer_context": 0,
        "depformer_max_period": 10000,
        "model_type": MODEL_TYPE,
        "moshi_name": LM_NAME,
        "mimi_name": MIMI_NAME,
        "tokenizer_name": TOKENIZER_NAME,
        "mimi_config_name": MIMI_CONFIG_NAME,
        "stt_config": dict(STT_CONFIG),
    }, mimi


def _lm_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    drop = {"model_type", "moshi_name", "mimi_name", "tokenizer_name", "mimi_config_name"}
    drop |= {"stt_config", "lm_gen_config"}
    return copy.deepcopy({k: v for k, v in config.items() if k not in drop})


def write_stt_checkpoint(out: Path | str, seed: int = 0, dim: int = 64, layers: int = 1):
    """Write the tiny checkpoint into ``out`` (created); returns the files written."""
    config, mimi = stt_config(dim, layers)
    return write_checkpoint(out, config, _lm_kwargs(config), mimi, "float32", seed, True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write a tiny random Kyutai STT checkpoint")
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        files = write_stt_checkpoint(args.out, args.seed, args.dim, args.layers)
    except CheckpointError as e:
        print(f"checkpoint_stt: {e}", file=sys.stderr)
        return 2
    for f in files:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
