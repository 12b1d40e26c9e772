"""Per-slot sampling: each slot keeps its own temperatures, top-k and seeds.

``LMGen`` samples the whole batch with one temperature from torch's global generator, so a
slot's tokens would depend on which other sessions share the batch. Here the random draw for
a token is a pure function of (slot seed, slot step, stream, vocabulary index): a counter-based
hash turned into exponential noise, and ``argmax(probs / noise)`` is an exact sample from
``probs`` (the same trick as ``moshi.utils.sampling.multinomial``). Nothing is stateful but
two counters updated in place, so the draw is the same whoever shares the batch, survives
CUDA graph capture, and costs a few element-wise ops on ``[slots, card]``.

Temperature 0 is greedy: ``argmax`` of the logits, exactly as ``LMGen`` does it.
"""

from __future__ import annotations

import torch

from track2_voice.model_server.options import SlotSampling

M32 = 0xFFFFFFFF
HASH_MUL = 0x45D9F3B  # a well-mixing 32-bit hash multiplier; x * HASH_MUL stays below 2**63
TEXT_STREAM = 0xA5A5  # stream id of the text token; audio codebook k uses k + 1
NOISE_BITS = 24  # float32 has a 24-bit mantissa: u in (0, 1) from the top 24 hash bits


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash on int64 tensors holding values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = (x * HASH_MUL) & M32
    x = x ^ (x >> 16)
    x = (x * HASH_MUL) & M32
    return x ^ (x >> 16)


def _fold(seed: torch.Tensor) -> torch.Tensor:
    """A 64-bit seed to 32 bits (both halves count)."""
    return _mix((seed & M32) ^ _mix((seed >> 32) & M32))


class SlotSampler:
    """Sampling parameters and step counters for ``slots`` sessions, as tensors on ``device``."""

    def __init__(self, slots: int, device: torch.device | str) -> None:
        self.slots = slots
        f = {"device": device, "dtype": torch.float32}
        i = {"device": device, "dtype": torch.long}
        self.temp_text = torch.zeros(slots, **f)
        self.temp_audio = torch.zeros(slots, **f)
        self.top_k_text = torch.zeros(slots, **i)
        self.top_k_audio = torch.zeros(slots, **i)
        self.seed_text = torch.zeros(slots, **i)
        self.seed_audio = torch.zeros(slots, **i)
        self.steps = torch.zeros(slots, **i)  # per-slot step counter, part of the draw

    def set_slot(self, slot: int, s: SlotSampling) -> None:
        """New parameters for one slot and its counter back to 0 (in place: graph-safe)."""
        self.temp_text[slot] = float(s.temp_text)
        self.temp_audio[slot] = float(s.temp)
        self.top_k_text[slot] = int(s.top_k_text)
        self.top_k_audio[slot] = int(s.top_k)
        self.seed_text[slot] = int(s.seed_text)
        self.seed_audio[slot] = int(s.seed_audio)
        self.steps[slot] = 0

    def advance(self, executed: torch.Tensor) -> None:
        """One step done for the slots in ``executed`` (bool ``[slots]``)."""
        self.steps.add_(executed.to(self.steps.dtype))

    def sample_text(self, logits: torch.Tensor) -> torch.Tensor:
        return self.sample(logits, self.temp_text, self.top_k_text, self.seed_text, TEXT_STREAM)

    def sample_audio(self, logits: torch.Tensor, codebook: int) -> torch.Tensor:
        return self.sample(logits, self.temp_audio, self.top_k_audio, self.seed_audio, codebook + 1)

    def sample(
        self,
        logits: torch.Tensor,
        temp: torch.Tensor,
        top_k: torch.Tensor,
        seed: torch.Tensor,
        stream: int,
    ) -> torch.Tensor:
        """One token per slot from ``logits`` ``[slots, card]``; returns long ``[slots]``."""
        logits = logits.float()
        greedy = logits.argmax(dim=-1)
        card = logits.shape[-1]
        scaled = logits / torch.where(temp > 0, temp, torch.ones_like(temp))[:, None]
        # top-k per slot: keep logits at or above the slot's k-th largest (0: keep all)
        ranked = scaled.sort(dim=-1, descending=True).values
        kth = ranked.gather(-1, (top_k.clamp(1, card) - 1)[:, None])
        kth = torch.where(top_k[:, None] > 0, kth, torch.full_like(kth, -torch.inf))
        probs = torch.softmax(torch.where(scaled >= kth, scaled, -torch.inf), dim=-1)
        noise = self._noise(seed, stream, card)
        sampled = (probs / noise).argmax(dim=-1)
        return torch.where(temp > 0, sampled, greedy)

    def _noise(self, seed: torch.Tensor, stream: int, card: int) -> torch.Tensor:
        """Exponential(1) noise ``[slots, card]`` from (seed, step, stream, index)."""
        h = _mix(_fold(seed) ^ (self.steps & M32))
        h = _mix(h ^ stream)
        idx = torch.arange(card, device=seed.device, dtype=torch.long)
        bits = _mix(h[:, None] ^ idx[None, :])
        u = ((bits >> (32 - NOISE_BITS)).float() + 0.5) * (2.0**-NOISE_BITS)
        return -torch.log(u)
