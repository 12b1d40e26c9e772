"""Mimi's codebooks for a random checkpoint: random centroids (different codes decode to
different sounds), or, for a Mimi that *hears*, the first level of each quantizer fitted to
the encoder's own latents, so that the codes follow the input.
"""

from __future__ import annotations

KMEANS_SECONDS = 1.0  # per probe sound, for the tiny Mimi's codebook init
KMEANS_SOUNDS = 32  # 400 latent frames: more than the 256 centroids


def _probe_sounds(n: int, seconds: float, seed: int):
    """Noise bursts and gliding tones at many levels: latents to fit the codebooks to."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    t = np.arange(int(24000 * seconds)) / 24000
    out = []
    for i in range(n):
        level = rng.uniform(0.005, 0.5)
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 6) * t + rng.uniform(0, 6))
        if i % 2:
            f0 = rng.uniform(80, 3000)
            s = np.sin(2 * np.pi * f0 * t * (1 + rng.uniform(-0.3, 0.3) * t))
        else:
            s = rng.standard_normal(t.size)
        out.append(level * env * s)
    return torch.tensor(np.stack(out), dtype=torch.float32)[:, None]


def hearing_mimi_state(mimi, seed: int) -> dict:
    """Mimi as ``checkpoint tiny`` makes it (random centroids, so different codes decode to
    different sounds, at speech-like levels), except the first level of each quantizer (the semantic codebook and the first
    acoustic one): those are fitted to the encoder's own latents by the quantizer's k-means
    init, so those two codes follow the input.

    Why only the first level: deeper levels quantize small residuals, and centroids fitted to
    them sit so close together that the last-bit differences between a batched and a
    single-session convolution flip codes; large random centroids there give a code that
    depends on nothing, robustly."""
    import torch

    from track2_voice.devtools.checkpoint_torch import _audible_mimi_state

    q = mimi.quantizer
    mimi.load_state_dict(_audible_mimi_state(mimi.state_dict()))
    firsts = [sub.vq.layers[0]._codebook for sub in (q.rvq_first, q.rvq_rest)]
    kept = {k: v.clone() for k, v in mimi.state_dict().items()}
    with torch.no_grad():
        sounds = _probe_sounds(KMEANS_SOUNDS, KMEANS_SECONDS, seed)
        latents = mimi.encode_to_latent(sounds, quantize=False)
        for cb in firsts:
            cb._initialized.fill_(0)
            cb._cached_initialized = False
        q.train()
        q(latents, mimi.frame_rate)  # one pass: k-means for the uninitialised first levels
        q.eval()
    fitted = {id(cb) for cb in firsts}
    out = {}
    for name, mod in mimi.named_modules():
        if hasattr(mod, "embedding_sum") and id(mod) not in fitted:
            for buf in ("embedding_sum", "cluster_usage", "_initialized"):
                key = f"{name}.{buf}"
                mod.get_buffer(buf).copy_(kept[key])  # undo the training pass's EMA updates
    out = {k: v.contiguous() for k, v in mimi.state_dict().items()}
    return out


def random_mimi_state(mimi, seed: int) -> dict:
    """Random centroids, so that different codes decode to different sounds (an untrained
    codebook is all zeros)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in mimi.state_dict().items():
        if k.endswith("_codebook.embedding_sum"):
            v = torch.randn(v.shape, generator=gen)
        elif k.endswith("_codebook.cluster_usage"):
            v = torch.ones_like(v)
        elif k.endswith("_codebook._initialized"):
            v = torch.ones_like(v)
        out[k] = v.contiguous()
    return out
