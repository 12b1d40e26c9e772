"""Moshi on MLX (Apple silicon; the CPU build runs it on Linux): Kyutai's moshi_mlx code path.

Loading follows Kyutai's apps: ``Lm(cfg)``, ``set_dtype(bfloat16)``, ``nn.quantize`` *before*
``load_weights(strict=True)``. Mimi runs through ``rustymimi`` for the published codec, or
moshi_mlx's MLX Mimi when the repo's config.json describes another size.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from track2_voice.backends.base import Backend, BackendError, StepResult
from track2_voice.backends.model_kind import (
    CONDITION,
    ModelKind,
    is_end_of_passage,
    mlx_unsupported,
)
from track2_voice.backends.tiny_mimi import TINY_MIMI
from track2_voice.config import MlxConfig, RolloverConfig, SamplingConfig
from track2_voice.events import PassageEnded
from track2_voice.frames import FRAME_SAMPLES, silence
from track2_voice.models import ModelRepo
from track2_voice.rollover import RolloverPolicy
from track2_voice.texttap import piece_text

log = logging.getLogger(__name__)

PUBLISHED_MIMI = "tokenizer-e351c8d8-checkpoint125.safetensors"
PUBLISHED_TOKENIZER = "tokenizer_spm_32k_3.model"
WEIGHTS_BY_Q = {4: "model.q4.safetensors", 8: "model.q8.safetensors", None: "model.safetensors"}
QUANT_GROUP = {4: 32, 8: 64}
WARMUP_STEPS = 4  # > the acoustic delay, so decode is warmed too


def infer_quantize(repo: ModelRepo, config: dict | None, asked: int | str) -> int | None:
    """The weight format: as asked, else from config.json, the repo name, or the files."""
    if asked != "auto":
        return None if asked == "bf16" else int(asked)
    if config and config.get("moshi_name"):
        m = re.search(r"\.q([48])\.", config["moshi_name"])
        return int(m.group(1)) if m else None
    m = re.search(r"-(q4|q8|bf16)$", repo.repo.rstrip("/"))
    if m:
        return None if m.group(1) == "bf16" else int(m.group(1)[1])
    for q in (4, 8):
        if repo.is_local and repo.has(WEIGHTS_BY_Q[q]):
            return q
    return None


@dataclass(frozen=True)
class CheckpointFiles:
    """Where a checkpoint's parts are, and the weights' format (None: bf16)."""

    weights: Path
    tokenizer: Path
    mimi: Path
    quantize: int | None


def _require_moshi_mlx() -> None:
    try:
        import mlx.core  # noqa: F401
        import mlx.nn  # noqa: F401
        import sentencepiece  # noqa: F401
        from moshi_mlx import models  # noqa: F401
    except ImportError as e:
        raise BackendError(
            f"the mlx backend needs moshi_mlx: pip install 'creature[mlx]' ({e})"
        ) from e


class RustyMimiCodec:
    """The published Mimi through Kyutai's Rust binding, frame by frame."""

    def __init__(self, path: Path, num_codebooks: int) -> None:
        import rustymimi

        self._tok = rustymimi.Tokenizer(str(path), num_codebooks=num_codebooks)

    def encode_step(self, pcm: np.ndarray) -> np.ndarray:
        codes = self._tok.encode_step(pcm.reshape(1, 1, FRAME_SAMPLES))
        return np.asarray(codes)[0, :, 0]

    def decode_step(self, codes: np.ndarray) -> np.ndarray:
        pcm = self._tok.decode_step(codes.reshape(1, -1, 1).astype(np.uint32))
        return np.asarray(pcm, dtype=np.float32).reshape(-1)

    def reset(self) -> None:
        self._tok.reset()


class MlxBackend(Backend):
    name = "mlx"

    def __init__(
        self,
        cfg: MlxConfig | None = None,
        sampling: SamplingConfig | None = None,
        rollover: RolloverConfig | None = None,
    ) -> None:
        self.cfg = cfg or MlxConfig()
        self.sampling = sampling or SamplingConfig()
        self.policy = RolloverPolicy(rollover)
        self.gen = None
        self.kind = ModelKind.MOSHI  # from config.json once started
        self.ct = None  # Hibiki's condition tensor
        self.info: dict = {}

    # -- loading ---------------------------------------------------------------------------
    def start(self) -> None:
        """Load the checkpoint the way Kyutai's apps do, then warm the step up."""
        _require_moshi_mlx()
        import sentencepiece

        t0 = time.perf_counter()
        repo = ModelRepo(self.cfg.hf_repo)
        config = repo.config()
        files = self._locate(repo, config)
        self.kind = self._model_kind(config or {})
        self.text_tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(files.tokenizer))
        self._load_lm(config, files)
        codec = self._open_codec(config, files.mimi)
        self._warm_up()
        self.info = {
            "weights": str(files.weights),
            "quantize": files.quantize or "bf16",
            "codec": codec,
            "load_s": round(time.perf_counter() - t0, 2),
        }
        log.info("mlx backend ready: %s", self.info)

    def _locate(self, repo: ModelRepo, config: dict | None) -> CheckpointFiles:
        """The weights (in the asked or inferred format), text tokenizer and Mimi files."""
        q = infer_quantize(repo, config, self.cfg.quantize)
        weights_name = WEIGHTS_BY_Q[q]
        if config and config.get("moshi_name") and self.cfg.quantize == "auto":
            weights_name = config["moshi_name"]
        tok_name = (config or {}).get("tokenizer_name", PUBLISHED_TOKENIZER)
        mimi_name = (config or {}).get("mimi_name", PUBLISHED_MIMI)
        return CheckpointFiles(
            weights=repo.file(weights_name, "model weights"),
            tokenizer=repo.file(tok_name, "text tokenizer"),
            mimi=repo.file(mimi_name, "Mimi codec weights"),
            quantize=q,
        )

    def _model_kind(self, config: dict) -> ModelKind:
        """Moshi or Hibiki, from config.json; a layout moshi_mlx cannot run is refused here."""
        try:
            kind = ModelKind.voice(config.get("model_type"))
        except ValueError as e:
            raise BackendError(f"{self.cfg.hf_repo}: {e}") from None
        unsupported = mlx_unsupported(config)
        if unsupported:
            raise BackendError(
                f"{self.cfg.hf_repo}: moshi_mlx cannot run this {kind.value} layout "
                f"(config.json: {', '.join(unsupported)}); Hibiki-Zero runs with the torch "
                "backend (voice.backend: torch) or a remote one"
            )
        return kind

    def _load_lm(self, config: dict | None, files: CheckpointFiles) -> None:
        """``Lm(cfg)``, ``set_dtype(bfloat16)``, ``nn.quantize`` before ``load_weights``."""
        import mlx.core as mx
        import mlx.nn as nn
        from moshi_mlx import models

        q = files.quantize
        lm_config = models.LmConfig.from_config_dict(config) if config else models.config_v0_1()
        mx.random.seed(self.sampling.seed)
        model = models.Lm(lm_config)
        model.set_dtype(mx.bfloat16)
        if q is not None:
            nn.quantize(model, bits=q, group_size=QUANT_GROUP[q])
        log.info("loading %s (%s)", files.weights, f"q{q}" if q else "bf16")
        try:
            model.load_weights(str(files.weights), strict=True)
        except ValueError as e:
            fmt = f"q{q}" if q else "bf16"
            raise BackendError(
                f"{files.weights}: weights do not fit a {fmt} model with this config ({e}); "
                f"check --quantize and the repo's config.json"
            ) from e
        # not moshi_mlx's ``model.warmup()``: it samples one token from the random weights and
        # raises ValueError(42) when that token happens to be 42 (a canary in Kyutai's code),
        # which a small checkpoint hits by chance (tests/test_mlx_backend.py has the seed).
        # ``_warm_up`` below runs real steps instead, which also builds the decode graph.
        self.model = model
        # Hibiki 1B/2B: conditioned on every step, as moshi_mlx's own server does it
        provider = getattr(model, "condition_provider", None)
        self.ct = (
            provider.condition_tensor("description", CONDITION)
            if provider is not None and self.kind.translates
            else None
        )
        self.lm_config = lm_config
        self.main_codebooks = lm_config.depformer.num_slices
        self.other_codebooks = lm_config.other_codebooks

    def _open_codec(self, config: dict | None, mimi: Path) -> str:
        """The published Mimi through rustymimi, or MLX's Mimi for a checkpoint whose
        config.json gives another size; returns which one."""
        n_codebooks = max(self.main_codebooks, self.other_codebooks)
        use_mlx_mimi = self.cfg.codec == "mlx" or (
            self.cfg.codec == "auto" and config is not None and "mimi_config" in config
        )
        if not use_mlx_mimi:
            self.codec = RustyMimiCodec(mimi, n_codebooks)
            return "rustymimi"
        from track2_voice.backends.mlx_mimi import MlxMimiCodec

        mimi_cfg = (config or {}).get("mimi_config")
        if mimi_cfg is None:
            raise BackendError(
                f"codec 'mlx' needs a mimi_config in config.json (e.g. {TINY_MIMI}); "
                "use codec: rustymimi for the published Mimi"
            )
        self.codec = MlxMimiCodec(str(mimi), mimi_cfg, n_codebooks)
        return "mlx"

    def _warm_up(self) -> None:
        """Run a few real steps so the first live frame does not pay for graph building."""
        self._new_generator()
        for _ in range(WARMUP_STEPS):
            self.step(silence())
        self.codec.reset()
        self._new_generator()
        self.policy.quiet_frames = 0

    def _new_generator(self) -> None:
        from moshi_mlx import models, utils

        for c in self.model.transformer_cache:
            c.reset()
        for c in getattr(self.model, "depformer_cache", []):
            c.reset()
        s = self.sampling
        self.gen = models.LmGen(
            model=self.model,
            max_steps=self.policy.max_steps,
            text_sampler=utils.Sampler(temp=s.temp_text, top_k=s.top_k_text or None),
            audio_sampler=utils.Sampler(temp=s.temp, top_k=s.top_k or None),
            check=False,
        )

    # -- streaming ---------------------------------------------------------------------------
    def step(self, pcm: np.ndarray) -> StepResult:
        import mlx.core as mx

        if self.gen is None:
            raise BackendError("mlx backend used before start()")
        rolled = self.policy.maybe_roll(self.gen.step_idx, self._new_generator)
        events = [rolled] if rolled is not None else []
        codes = self.codec.encode_step(pcm)
        other = mx.array(codes[: self.other_codebooks].astype(np.int32))[None, :]
        text_tokens, _ = self.gen.step(other, ct=self.ct)
        text_id = int(text_tokens[0].item())
        text = piece_text(self.text_tokenizer, text_id)
        if is_end_of_passage(text_id, self.kind):
            events.append(PassageEnded())
        audio_tokens = self.gen.last_audio_tokens()
        if audio_tokens is not None:
            out = self.codec.decode_step(np.array(audio_tokens[0]).astype(np.uint32))
        else:
            out = silence()
        self.policy.observe(pcm, out if audio_tokens is not None else None)
        return StepResult(out, text, events)

    def reset(self) -> None:
        if self.gen is not None:
            self._new_generator()
            self.codec.reset()

    def close(self) -> None:
        self.gen = None
