"""A session's sampling settings, apart from the sampler: the CLI, the options and the wire
parameters read them without importing torch (``creature --help`` must start fast)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlotSampling:
    """How one session samples (Kyutai's query parameters map onto these)."""

    temp_text: float = 0.7
    temp_audio: float = 0.8
    top_k_text: int = 25
    top_k_audio: int = 250
    seed_text: int = 0
    seed_audio: int = 0
