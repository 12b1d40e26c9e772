"""Kyutai's PyTorch ``moshi`` in-process: the path for a machine with an NVIDIA GPU.

Loads with ``CheckpointInfo.from_hf_repo`` (a repo id, or a local directory in the same
layout), runs Mimi and ``LMGen`` in streaming mode one 80 ms frame at a time (bfloat16 on
CUDA, float32 on CPU), taps the text stream, and rolls the generator state over at a quiet
moment before its step budget runs out (``track2_voice.rollover``).

A Hibiki(-Zero) checkpoint (``model_type: "hibiki"``) loads the same way and runs as an
interpreter: conditioned, its sampling defaults from its config, its end-of-passage token
kept out of the text (``track2_voice.backends.model_kind``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from track2_voice.backends.base import Backend, BackendError, StepResult
from track2_voice.backends.model_kind import (
    CFG_COEF,
    ModelKind,
    condition_tensors,
    is_end_of_passage,
    sampling_for,
)
from track2_voice.config import VoiceConfig
from track2_voice.events import DiscreteEvent, PassageEnded
from track2_voice.frames import FRAME_SAMPLES, silence
from track2_voice.models import ModelRepo
from track2_voice.rollover import RolloverPolicy
from track2_voice.texttap import piece_text

log = logging.getLogger(__name__)

WARMUP_FRAMES = 4  # as moshi.server does: first calls allocate caches / pick kernels
FILE_KEYS = {  # config.json key -> from_hf_repo argument
    "moshi_name": "moshi_weights",
    "mimi_name": "mimi_weights",
    "tokenizer_name": "tokenizer",
    "mimi_config_name": "mimi_config_path",
}


def local_checkpoint_args(d: Path) -> dict[str, Any]:
    """Paths for ``from_hf_repo`` from a local directory. Names in config.json may carry
    ``file://``; a name that does not exist as written is looked up in ``d`` by base name,
    so a checkpoint directory can be moved."""
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise BackendError(f"{d}: no config.json (expected a Moshi PyTorch repo layout)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise BackendError(f"{cfg_path}: not valid JSON ({e})") from e
    defaults = {
        "moshi_name": "model.safetensors",
        "mimi_name": "tokenizer-e351c8d8-checkpoint125.safetensors",
        "tokenizer_name": "tokenizer_spm_32k_3.model",
    }
    args: dict[str, Any] = {"config_path": cfg_path}
    for key, arg in FILE_KEYS.items():
        name = cfg.get(key, defaults.get(key))
        if name is None:
            continue
        p = Path(str(name).removeprefix("file://"))
        if not p.is_absolute() or not p.exists():
            p = d / p.name
        if not p.exists():
            raise BackendError(f"{cfg_path}: {key} names {name!r}, which is not in {d}")
        args[arg] = p
    return args


def resolve_device(want: str, setting: str = "voice.torch.device") -> str:
    """``auto``: the GPU when this torch build sees one, else the CPU. Asking for ``cuda``
    without one is the user's error, named by ``setting`` (a config key or a flag). The one
    copy for the voice backend, the model server and the in-process transcript."""
    import torch

    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"{setting} is 'cuda' but this torch build sees no CUDA GPU")
    return want


def resolve_dtype(want: str, device: str):
    """``auto``: bfloat16 on a GPU, float32 on a CPU (where bfloat16 is slow); else the named
    torch dtype (the settings allow bfloat16, float16 and float32)."""
    import torch

    if want == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[want]


def checkpoint_info(repo: str) -> Any:
    """Kyutai's ``CheckpointInfo`` for a local directory (the published layout) or a hub repo
    id; a path that is neither, or a checkpoint that cannot be read, is a BackendError naming
    it. Shared by this backend and the model server, which load the same checkpoints."""
    from moshi.models import loaders

    ModelRepo(repo)  # "no such directory" for a mistyped path, before the hub's message
    try:
        if Path(repo).is_dir():
            return loaders.CheckpointInfo.from_hf_repo(
                str(Path(repo).resolve()), **local_checkpoint_args(Path(repo))
            )
        return loaders.CheckpointInfo.from_hf_repo(repo)
    except BackendError:
        raise
    except Exception as e:
        raise BackendError(f"cannot load the Moshi checkpoint {repo!r}: {e}") from e


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, cfg: VoiceConfig) -> None:
        self.tcfg = cfg.torch
        self.sampling = cfg.sampling
        self.rollover = RolloverPolicy(cfg.rollover)
        self.step_idx = 0
        self._skip_first = True
        self.mimi = self.lm_gen = self.tokenizer = None
        self.device = "cpu"
        self.kind = ModelKind.MOSHI  # from the checkpoint's config.json once started
        self.passages_ended = 0  # end-of-passage tokens a translation model emitted

    def start(self) -> None:
        import torch
        from moshi.models import LMGen

        self.device = resolve_device(self.tcfg.device)
        dtype = resolve_dtype(self.tcfg.dtype, self.device)
        repo = self.tcfg.hf_repo
        info = checkpoint_info(repo)
        try:
            self.kind = ModelKind.voice(info.model_type)
            self.sampling = sampling_for(self.sampling, info.lm_gen_config)
        except ValueError as e:
            raise BackendError(f"{repo}: {e}") from None
        log.info("torch: loading %s (%s) on %s (%s)", repo, self.kind.value, self.device, dtype)
        torch.manual_seed(self.sampling.seed)
        self.mimi = info.get_mimi(device=self.device)
        lm = info.get_moshi(device=self.device, dtype=dtype)
        self.tokenizer = info.get_text_tokenizer()
        self.lm_gen = LMGen(
            lm,
            temp=self.sampling.temp,
            temp_text=self.sampling.temp_text,
            top_k=self.sampling.top_k,
            top_k_text=self.sampling.top_k_text,
            cfg_coef=CFG_COEF,
            condition_tensors=condition_tensors(self.kind, lm, 1),
        )
        self.mimi.streaming_forever(1)
        self.lm_gen.streaming_forever(1)
        for _ in range(WARMUP_FRAMES):
            self._generate(silence())
        self._reset_state()

    def _reset_state(self) -> None:
        self.mimi.reset_streaming()
        self.lm_gen.reset_streaming()
        self.step_idx = 0
        self._skip_first = True

    def _generate(self, pcm: np.ndarray) -> tuple[np.ndarray | None, int | None]:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(pcm).to(self.device)[None, None]
            codes = self.mimi.encode(x)
            if self._skip_first:
                # moshi.server does the same: the first encoded frame carries the left
                # padding, so re-apply it by resetting the encoder after that frame.
                self.mimi.reset_streaming()
                self._skip_first = False
            out, text_id = None, None
            for c in range(codes.shape[-1]):
                tokens = self.lm_gen.step(codes[:, :, c : c + 1])
                if tokens is None:
                    continue
                audio = self.mimi.decode(tokens[:, 1:])
                out = audio[0, 0].float().cpu().numpy()
                text_id = int(tokens[0, 0, 0].item())
        return out, text_id

    def step(self, pcm: np.ndarray) -> StepResult:
        if self.lm_gen is None:
            raise BackendError("torch backend used before start()")
        out, text_id = self._generate(pcm)
        if out is None or out.shape[0] != FRAME_SAMPLES:
            out = silence()
        text = piece_text(self.tokenizer, text_id) if text_id is not None else None
        events: list[DiscreteEvent] = []
        if is_end_of_passage(text_id, self.kind):
            self.passages_ended += 1
            events.append(PassageEnded())
        self.step_idx += 1
        self.rollover.observe(pcm, out)
        rolled = self.rollover.maybe_roll(self.step_idx, self._reset_state)
        if rolled is not None:
            events.append(rolled)
        return StepResult(out, text, events)

    def reset(self) -> None:
        if self.lm_gen is not None:
            self._reset_state()

    def close(self) -> None:
        self.mimi = self.lm_gen = None
