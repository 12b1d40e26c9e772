"""Moshi and Mimi streaming with a fixed number of slots, stepped as one batch.

``step(frames)`` runs one 80 ms frame for the slots present in ``frames`` and leaves every
other slot exactly as it was (``set_exec_mask``). For each slot it does what
``moshi.server`` does for its single session: Mimi-encode the user's frame, reset the
encoder after a session's first frame (that frame carries the left padding), one ``LMGen``
step, and Mimi-decode the generated tokens once the acoustic delay has filled.

Why this gives each session the stream it would get alone: every streaming module in moshi
keeps per-batch-entry state (offsets, KV caches, conv buffers) and updates only the entries
whose exec flag is set; the sampler draws from per-slot noise (``sampling``). What remains
shared is the arithmetic of one batched matmul, which on the same device gives the same
values for a row whatever the other rows hold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from track2_voice.backends.model_kind import LM_GEN_KEYS
from track2_voice.frames import FRAME_SAMPLES, silence
from track2_voice.model_server.options import SlotSampling
from track2_voice.model_server.sampling import SlotSampler

log = logging.getLogger(__name__)

WARMUP_STEPS = 4  # as moshi.server: the first calls allocate caches and pick kernels


@dataclass(slots=True)
class SlotOutput:
    """What one slot produced in one step. ``pcm`` is None while the acoustic delay fills."""

    slot: int
    pcm: np.ndarray | None
    text_id: int | None
    tokens: np.ndarray | None  # [1 + dep_q] ids (text, then audio), for tests and tools


@dataclass(slots=True)
class LoadedModel:
    """The pieces a checkpoint gives: Mimi, the LM, the tokenizer and generation settings."""

    mimi: Any
    lm: Any
    tokenizer: Any
    model_type: str = "moshi"
    lm_gen_config: dict | None = None
    stt_config: dict | None = None


def load_model(
    checkpoint: str | Path, device: str, dtype: torch.dtype, context: int | None = None
) -> LoadedModel:
    """A local checkpoint directory (the published layout) or a Hugging Face repo id.

    ``context`` shortens the LM's attention window (and so its KV cache, the memory every
    slot costs); the first ``context`` steps of a conversation are unchanged by it."""
    from track2_voice.backends.base import BackendError
    from track2_voice.backends.torch_backend import checkpoint_info

    repo = str(checkpoint)
    info = checkpoint_info(repo)
    try:
        mimi = info.get_mimi(device=device)
        overrides = {} if context is None else {"lm_kwargs_overrides": {"context": context}}
        lm = info.get_moshi(device=device, dtype=dtype, **overrides)
        tokenizer = info.get_text_tokenizer()
    except Exception as e:
        raise BackendError(f"cannot load the Moshi checkpoint {repo!r}: {e}") from e
    return LoadedModel(mimi, lm, tokenizer, info.model_type, dict(info.lm_gen_config),
                       dict(info.stt_config))  # fmt: skip


def _slot_lm_gen_class():
    """``LMGen`` whose tokens come from a per-slot sampler (built lazily: moshi is optional)."""
    from moshi.models import LMGen

    class SlotLMGen(LMGen):
        """Greedy inside ``LMGen`` (``use_sampling=False``); the text token is chosen by the
        sampler in the text-logits hook, which leaves a one-hot row for LMGen's argmax, and
        the depth transformer samples each codebook through the sampler as well."""

        def __init__(self, lm, sampler: SlotSampler, **kwargs) -> None:
            self.sampler = sampler
            super().__init__(
                lm, use_sampling=False, on_text_logits_hook=self._choose_text, **kwargs
            )

        def _choose_text(self, text_logits: torch.Tensor) -> None:
            chosen = self.sampler.sample_text(text_logits[:, 0, 0])
            text_logits.fill_(-torch.inf)
            text_logits[:, 0, 0].scatter_(-1, chosen[:, None], 0.0)

        def depformer_step(self, text_token: torch.Tensor, transformer_out: torch.Tensor):
            lm = self.lm_model
            cfg = self.cfg_coef != 1.0
            prev = text_token
            tokens = []
            with lm.depformer.streaming(2 * prev.shape[0] if cfg else prev.shape[0]):
                for cb in range(lm.dep_q):
                    inp = prev[:, None, None]
                    logits = lm.forward_depformer(cb, inp.repeat(2, 1, 1) if cfg else inp,
                                                  transformer_out)  # fmt: skip
                    if cfg:
                        cond, null = logits.chunk(2)
                        logits = null + (cond - null) * self.cfg_coef
                    prev = self.sampler.sample_audio(logits[:, 0, 0], cb)
                    tokens.append(prev)
            return torch.stack(tokens, dim=1)

    return SlotLMGen


class BatchEngine:
    """``slots`` conversations in one model. Not thread-safe: one thread steps it."""

    def __init__(
        self,
        model: LoadedModel,
        slots: int,
        device: str = "cpu",
        cfg_coef: float = 1.0,
        warmup: bool = True,
    ) -> None:
        from moshi.run_inference import get_condition_tensors

        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.model = model
        self.slots = slots
        self.device = torch.device(device)
        self.mimi = model.mimi
        self.tokenizer = model.tokenizer
        self.frame_size = int(self.mimi.sample_rate / self.mimi.frame_rate)
        if self.frame_size != FRAME_SAMPLES:
            raise ValueError(f"Mimi frame of {self.frame_size} samples, expected {FRAME_SAMPLES}")
        self.sampler = SlotSampler(slots, self.device)
        gen_cfg = {
            k: v
            for k, v in (model.lm_gen_config or {}).items()
            if k not in (*LM_GEN_KEYS, "use_sampling")  # sampled per slot, not by LMGen
        }
        conditions = get_condition_tensors(model.model_type, model.lm, slots, cfg_coef)
        self.lm_gen = _slot_lm_gen_class()(
            model.lm,
            self.sampler,
            cfg_coef=cfg_coef,
            condition_tensors=conditions,
            support_out_of_sync=True,  # per-slot offsets decide what is generated yet
            **gen_cfg,
        )
        self.dep_q = model.lm.dep_q
        self.ungenerated = model.lm.ungenerated_token_id  # acoustic delay, idle slot
        stt = getattr(model, "stt_config", None) or {}
        self.delay_s = float(stt.get("audio_delay_seconds", 0.0))  # STT: text trails audio
        # kept so that close() can leave streaming mode and the model can serve a new engine
        self._streams = [self.mimi.streaming(slots), self.lm_gen.streaming(slots)]
        for stream in self._streams:
            stream.__enter__()
        self._first = [True] * slots  # the slot's next frame is its session's first
        self.steps = 0
        if warmup:
            self.warmup()

    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        slots: int,
        device: str = "cpu",
        dtype=torch.float32,
        context: int | None = None,
        **kw,
    ) -> BatchEngine:
        return cls(load_model(checkpoint, device, dtype, context), slots, device, **kw)

    def kv_bytes_per_slot(self) -> int:
        """Memory one slot's LM key/value cache takes (the main per-session cost)."""
        lm = self.model.lm
        total = 0
        for m in lm.transformer.modules():
            state = getattr(m, "_streaming_state", None)
            cache = getattr(state, "kv_cache", None)
            if cache is not None:
                total += cache.cache.numel() * cache.cache.element_size()
        return total // self.slots

    def warmup(self) -> None:
        """Run a few steps on every slot, then reset them all."""
        for _ in range(WARMUP_STEPS):
            self.step({i: silence() for i in range(self.slots)})
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        for i in range(self.slots):
            self.reset_slot(i, SlotSampling())
        self.steps = 0

    def close(self) -> None:
        """Leave streaming mode (the per-slot state is dropped; the weights stay loaded)."""
        while self._streams:
            self._streams.pop().__exit__(None, None, None)

    def _mask(self, slots) -> torch.Tensor:
        m = torch.zeros(self.slots, dtype=torch.bool)
        m[list(slots)] = True
        return m.to(self.device)

    def reset_slot(self, slot: int, sampling: SlotSampling) -> None:
        """A clean slot for a new session (or a rollover): its model state and counters only."""
        mask = self._mask([slot])
        with torch.no_grad():
            self.mimi.reset_streaming(mask)
            self.lm_gen.reset_streaming(mask)
        self.sampler.set_slot(slot, sampling)
        self._first[slot] = True

    @torch.no_grad()
    def step(self, frames: Mapping[int, np.ndarray]) -> list[SlotOutput]:
        """One frame for each slot in ``frames`` (slot -> 1920 float32 samples), in one batch."""
        if not frames:
            return []
        order = sorted(frames)
        pcm = np.zeros((self.slots, 1, self.frame_size), dtype=np.float32)
        for i in order:
            pcm[i, 0] = frames[i]
        active = self._mask(order)
        self.mimi.set_exec_mask(active)
        codes = self.mimi.encode(torch.from_numpy(pcm).to(self.device))
        firsts = [i for i in order if self._first[i]]
        if firsts:
            # moshi.server: reset the encoder after a session's first frame, so the padding
            # is applied again to the next one (the LM still gets this frame's codes)
            self.mimi.reset_streaming(self._mask(firsts))
            for i in firsts:
                self._first[i] = False
        self.lm_gen.set_exec_mask(active)
        step = self.lm_gen.step(codes[:, :, :1])
        self.sampler.advance(active)
        if self.dep_q == 0:  # a speech-to-text model: a text token per slot, no audio
            self.steps += 1
            if step is None:
                return [SlotOutput(i, None, None, None) for i in order]
            tok = step[:, :, 0].cpu().numpy()
            return [SlotOutput(i, None, int(tok[i, 0]), tok[i].copy()) for i in order]
        tokens = step[:, :, 0]  # [slots, 1 + dep_q]
        ready = active & (tokens[:, 1] != self.ungenerated)
        decoded = None
        if bool(ready.any()):
            self.mimi.set_exec_mask(ready)
            decoded = self.mimi.decode(tokens[:, 1:, None].clamp(min=0))[:, 0].float().cpu()
        tok = tokens.cpu().numpy()
        ready_cpu = ready.cpu().numpy()
        self.steps += 1
        out = []
        for i in order:
            if ready_cpu[i] and decoded is not None:
                out.append(SlotOutput(i, decoded[i].numpy().copy(), int(tok[i, 0]), tok[i].copy()))
            else:
                out.append(SlotOutput(i, None, None, None))
        return out
