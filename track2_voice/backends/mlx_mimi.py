"""moshi_mlx's MLX Mimi, for codecs whose size is not the published one (tiny checkpoints).

The published Mimi runs through ``rustymimi`` (as Kyutai's MLX apps do); that binding has the
published size built in. A checkpoint's ``config.json`` may carry a ``mimi_config`` with another
size; then this module builds moshi_mlx's MLX Mimi and loads PyTorch-layout weights with
``load_pytorch_weights``, the same path the full-size weights take in MLX.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np
from moshi_mlx import models
from moshi_mlx.modules import SeanetConfig, TransformerConfig

from track2_voice.frames import FRAME_SAMPLES


def mimi_config(c: dict[str, Any]) -> models.MimiConfig:
    seanet = SeanetConfig(
        dimension=c["dimension"],
        channels=1,
        causal=True,
        nfilters=c["n_filters"],
        nresidual_layers=1,
        ratios=list(c["ratios"]),
        ksize=7,
        residual_ksize=3,
        last_ksize=3,
        dilation_base=2,
        pad_mode="constant",
        true_skip=True,
        compress=2,
    )
    transformer = TransformerConfig(
        d_model=c["dimension"],
        num_heads=c["transformer_heads"],
        num_layers=c["transformer_layers"],
        causal=True,
        norm_first=True,
        bias_ff=False,
        bias_attn=False,
        layer_scale=0.01,
        positional_embedding="rope",
        use_conv_bias=True,
        gating=False,
        norm="layer_norm",
        context=c["transformer_context"],
        max_period=10000,
        max_seq_len=8192,
        kv_repeat=1,
        dim_feedforward=c["transformer_ff"],
        conv_layout=True,
        use_conv_block=False,
        cross_attention=False,
        conv_kernel_size=3,
    )
    return models.MimiConfig(
        channels=1,
        sample_rate=24000,
        frame_rate=12.5,
        renormalize=True,
        seanet=seanet,
        transformer=transformer,
        quantizer_nq=c["n_q"],
        quantizer_bins=c["quantizer_bins"],
        quantizer_dim=c["quantizer_dim"],
    )


def to_pytorch_layout(weights: dict[str, mx.array]) -> dict[str, mx.array]:
    """Inverse of ``Mimi.load_pytorch_weights``' renaming: MLX names -> published names."""
    out = {}
    for k, v in weights.items():
        if (
            k.endswith(".conv.weight")
            or k.endswith(".output_proj.weight")
            or k.endswith(".input_proj.weight")
        ):
            v = v.swapaxes(-1, -2)
        if k.endswith(".convtr.weight"):
            v = v.transpose(2, 0, 1)
        k = k.replace(".block.1.", ".block.3.").replace(".block.0.", ".block.1.")
        for part in ("encoder", "decoder"):
            k = k.replace(f"{part}.init_conv1d.", f"{part}.0.")
            k = k.replace(f"{part}.final_conv1d.", f"{part}.14.")
        for i, d in enumerate([2, 5, 8, 11]):
            k = k.replace(f"decoder.layers.{i}.upsample.", f"decoder.{d}.")
            k = k.replace(f"decoder.layers.{i}.residuals.0.", f"decoder.{d + 1}.")
        for i, e in enumerate([1, 4, 7, 10]):
            k = k.replace(f"encoder.layers.{i}.residuals.0.", f"encoder.{e}.")
            k = k.replace(f"encoder.layers.{i}.downsample.", f"encoder.{e + 2}.")
        k = k.replace(".gating.linear1.weight", ".linear1.weight")
        k = k.replace(".gating.linear2.weight", ".linear2.weight")
        k = k.replace(".in_proj.weight", ".in_proj_weight")
        if k.startswith("encoder.") and not k.startswith("encoder.model."):
            k = "encoder.model." + k[len("encoder.") :]
        if k.startswith("decoder.") and not k.startswith("decoder.model."):
            k = "decoder.model." + k[len("decoder.") :]
        out[k] = v
    return out


class MlxMimiCodec:
    """Frame-at-a-time streaming encode/decode with the same shape as rustymimi's Tokenizer."""

    def __init__(self, weights_path: str, config: dict[str, Any], num_codebooks: int) -> None:
        self.model = models.mimi.Mimi(mimi_config(config))
        self.model.load_pytorch_weights(str(weights_path), strict=True)
        self.num_codebooks = num_codebooks

    def encode_step(self, pcm: np.ndarray) -> np.ndarray:
        """(FRAME_SAMPLES,) float32 -> (num_codebooks,) uint32 codes."""
        codes = self.model.encode_step(mx.array(pcm, dtype=mx.float32).reshape(1, 1, FRAME_SAMPLES))
        return np.array(codes[0, : self.num_codebooks, 0]).astype(np.uint32)

    def decode_step(self, codes: np.ndarray) -> np.ndarray:
        pcm = self.model.decode_step(mx.array(codes.reshape(1, -1, 1).astype(np.int32)))
        return np.array(pcm.astype(mx.float32)).reshape(-1)

    def reset(self) -> None:
        self.model.reset_all()
