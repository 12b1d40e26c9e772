"""The size of the small Mimi in the tiny random checkpoints: the example the mlx backend's
``mimi_config`` error shows, and the size the checkpoint writers write. Plain data, so reading
it loads no MLX (the writers in ``track2_voice/devtools`` import it from here)."""

from __future__ import annotations

CODEBOOKS = 8  # Mimi codebooks the LM models for each voice (as in Moshi 7B)
CARD = 2048  # codebook size

# A small Mimi: same strides (24 kHz -> 12.5 Hz) and layout, far fewer channels.
TINY_MIMI = {
    "dimension": 64,
    "n_filters": 8,
    "ratios": [8, 6, 5, 4],
    "transformer_layers": 1,
    "transformer_heads": 2,
    "transformer_ff": 128,
    "transformer_context": 250,
    "quantizer_dim": 32,
    "quantizer_bins": CARD,
    "n_q": CODEBOOKS,
}
