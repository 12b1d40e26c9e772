"""Random-weight Hibiki(-Zero) checkpoints in the published PyTorch layout, tiny or full.

Hibiki-Zero (Kyutai, Feb 2026) is Moshi's architecture trained for simultaneous speech
translation; its package (``hibiki-zero``) has no model code of its own and loads with
``moshi`` 0.2.13's ``CheckpointInfo``. What makes a checkpoint a Hibiki one is all in
``config.json``, and this writer produces those keys:

- ``model_type: "hibiki"``: the loaders copy the PAD embedding over EOS (id 2), and
  ``moshi.run_inference.get_condition_tensors`` conditions every stream on
  ``description = "very_good"`` (``conditioners`` + ``fuser``: a lookup-table conditioner
  summed into the input);
- the Hibiki-Zero 3B shape: ``kv_repeat`` 2 (grouped-query attention), ``rope_concat``
  positional embedding, ``hidden_scale`` 6, 16 + 16 audio codebooks with acoustic delay 2,
  a depth transformer with a weights-per-step schedule and per-step output norms
  (``depformer_norm``);
- a 48k multilingual SentencePiece tokenizer under its published name, and the sampling
  defaults the loaders pass to ``LMGen`` (``lm_gen_config``).

``--size full`` has the published 3B shapes (about 6.5 GB of bfloat16), written tensor by
tensor, to measure the real step cost and the slots per GPU without downloading.
``--size tiny`` is the same layout at a size a CPU runs faster than real time, with a Mimi
that hears (its first codebooks fitted to the encoder's own latents), so what it says
follows what it hears.

Layout::

    config.json                              LM config + file names (relative)
    model.safetensors                        the LM
    mimi-pytorch-e351c8d8@125.safetensors    Mimi (16 codebooks used)
    mimi_config.json                         tiny only: the small Mimi's config
    tokenizer_spm_48k_multi6_2.model         SentencePiece, one piece per text id
"""

from __future__ import annotations

from typing import Any

from track2_voice.devtools.checkpoint_random import (
    LM_NAME,
    MIMI_CONFIG_NAME,
    CheckpointError,
    ModelFamily,
    describe,
    lm_dtype,
    lm_kwargs,
)
from track2_voice.devtools.random_lm import lm_tensors
from track2_voice.devtools.tiny_common import stream_layout

MODEL_TYPE = "hibiki"
MIMI_NAME = "mimi-pytorch-e351c8d8@125.safetensors"  # the name in Kyutai's Hibiki repos
TOKENIZER_NAME = "tokenizer_spm_48k_multi6_2.model"
CODEBOOKS = 16  # audio codebooks per stream (source and translation)
ACOUSTIC_DELAY = 2  # steps the acoustic codebooks trail the semantic one
FULL_TEXT_CARD = 48000
TINY_TEXT_CARD = 256
TINY_CARD = 256  # codebook size of the tiny Mimi (the real one has 2048)
# The depth transformer shares its weights from codebook 8 on (9 distinct sets for 16 steps).
SCHEDULE = list(range(9)) + [8] * (CODEBOOKS - 9)
DESCRIPTION_VALUES = ["very_bad", "bad", "neutral", "good", "very_good"]


def _conditioning() -> dict[str, Any]:
    """A lookup-table ``description`` condition summed into the transformer's input."""
    return {
        "conditioners": {
            "description": {
                "type": "lut",
                "lut": {
                    "n_bins": 31,
                    "dim": 16,
                    "tokenizer": "noop",
                    "possible_values": list(DESCRIPTION_VALUES),
                },
            }
        },
        "fuser": {
            "cross_attention_pos_emb": False,
            "cross_attention_pos_emb_scale": 1,
            "sum": ["description"],
            "prepend": [],
            "cross": [],
        },
    }


def _delays() -> list[int]:
    stream = [0] + [ACOUSTIC_DELAY] * (CODEBOOKS - 1)
    return [0] + stream + stream  # text, translation (generated), source (heard)


def hibiki_lm_config(size: str, dim: int = 64, layers: int = 1) -> dict[str, Any]:
    """The LM keys of config.json: Hibiki-Zero 3B's shapes, or the same layout tiny."""
    if size == "full":
        dim, layers, heads, text_card, card = 2048, 28, 16, FULL_TEXT_CARD, 2048
        dep_dim, dep_heads, dep_layers = 1024, 16, 6
    elif size == "tiny":
        if dim < 64 or dim % 64:
            raise CheckpointError(f"--dim must be a positive multiple of 64, got {dim}")
        if layers < 1:
            raise CheckpointError(f"--layers must be at least 1, got {layers}")
        heads, text_card, card = dim // 32, TINY_TEXT_CARD, TINY_CARD
        dep_dim, dep_heads, dep_layers = max(32, dim // 2), max(1, dim // 64), 1
    else:
        raise CheckpointError(f"--size must be tiny or full, got {size!r}")
    return {
        **stream_layout(dim, text_card, card, CODEBOOKS, _delays()),
        "num_heads": heads,
        "num_layers": layers,
        "kv_repeat": 2,
        "hidden_scale": 6.0,
        "causal": True,
        "layer_scale": None,
        "context": 3000,
        "max_period": 20000,
        "gating": "silu",
        "norm": "rms_norm_f32",
        "positional_embedding": "rope_concat",
        "depformer_dim": dep_dim,
        "depformer_num_heads": dep_heads,
        "depformer_num_layers": dep_layers,
        "depformer_dim_feedforward": None,  # hidden_scale x depformer_dim
        "depformer_kv_repeat": 1,
        "depformer_layer_scale": None,
        "depformer_multi_linear": True,
        "depformer_weights_per_step": True,
        "depformer_weights_per_step_schedule": list(SCHEDULE),
        "depformer_norm": "layer_norm",
        "depformer_pos_emb": "none",
        "depformer_context": CODEBOOKS,
        "depformer_max_period": 10000,
        "depformer_gating": "silu",
        **_conditioning(),
    }


def hibiki_mimi_config(size: str) -> dict[str, Any] | None:
    """The tiny Mimi with room for 16 codebooks; None for full (moshi's default Mimi)."""
    if size == "full":
        return None
    from track2_voice.devtools.checkpoint_torch import tiny_mimi_config

    cfg = tiny_mimi_config()
    cfg["quantizer"]["n_q"] = CODEBOOKS
    return cfg


LM_GEN_CONFIG = {"temp": 0.8, "temp_text": 0.8, "top_k": 250, "top_k_text": 50}


def hibiki_config(size: str, dim: int = 64, layers: int = 1) -> dict[str, Any]:
    """The whole config.json."""
    config: dict[str, Any] = {
        **hibiki_lm_config(size, dim, layers),
        "model_type": MODEL_TYPE,
        "moshi_name": LM_NAME,
        "mimi_name": MIMI_NAME,
        "tokenizer_name": TOKENIZER_NAME,
        "lm_gen_config": dict(LM_GEN_CONFIG),
    }
    if size == "tiny":
        config["mimi_config_name"] = MIMI_CONFIG_NAME
    return config


def describe_hibiki_checkpoint(
    size: str, dim: int = 64, layers: int = 1, dtype: str | None = None
) -> str:
    """What ``write_hibiki_checkpoint`` would write, from shapes on the meta device (JSON)."""
    config = hibiki_config(size, dim, layers)
    dtype = lm_dtype(size, dtype)
    tensors = lm_tensors(lm_kwargs(config), dtype)
    return describe(config, tensors, size, dtype, model=MODEL_TYPE)


HIBIKI = ModelFamily(hibiki_config, hibiki_mimi_config)
write_hibiki_checkpoint = HIBIKI.write
