"""What a checkpoint is for, read from its config.json: conversation (Moshi) or translation
(Hibiki, Hibiki-Zero), and what that changes when it runs.

Kyutai's loaders take both kinds through the same ``CheckpointInfo``; the differences are
few and all here, so the in-process backend and the model server apply them the same way:

- a Hibiki model is conditioned on every stream (``description = "very_good"``, through
  ``moshi.run_inference.get_condition_tensors``) with classifier-free guidance off
  (``cfg_coef`` 1, as Kyutai's ``hibiki-zero serve`` runs it);
- it ends a translated passage with the text token EOS (id 2, the piece ``</s>``): never a
  caption, a marker (``hibiki-zero serve`` sends it to clients as the text ``</s>``);
- the checkpoint's ``lm_gen_config`` (its sampling defaults) applies to every key the
  creature's config does not set.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from pydantic import ValidationError

from track2_voice.config import Sampling
from track2_voice.texttap import EOS_ID

HIBIKI_ZERO_REPO = "kyutai/hibiki-zero-3b-pytorch-bf16"  # interpret mode's default in-process
CFG_COEF = 1.0  # Hibiki-Zero's published server and generator use no guidance
CONDITION = "very_good"  # the description every Hibiki stream is conditioned on
# the keys LMGen takes from a checkpoint's lm_gen_config: the Sampling fields, same names
LM_GEN_KEYS = tuple(Sampling.model_fields)
S = TypeVar("S", bound=Sampling)


class ModelKind(str, Enum):
    """``model_type`` in config.json (moshi's loaders default to ``moshi``)."""

    MOSHI = "moshi"
    HIBIKI = "hibiki"
    STT = "stt"  # Kyutai's streaming speech-to-text: hears, writes text, never speaks

    @property
    def translates(self) -> bool:
        return self is ModelKind.HIBIKI

    @property
    def transcribes(self) -> bool:
        return self is ModelKind.STT

    @classmethod
    def voice(cls, model_type: str | None) -> ModelKind:
        """The kind of a checkpoint that must speak (a voice backend's): an STT one cannot."""
        kind = cls.of(model_type)
        if kind.transcribes:
            raise ValueError(
                "config.json: model_type 'stt' is a speech-to-text model, which hears but "
                "never speaks: use it for the user's words (voice.transcript.kyutai.hf_repo)"
            )
        return kind

    @classmethod
    def of(cls, model_type: str | None) -> ModelKind:
        try:
            return cls(model_type or cls.MOSHI.value)
        except ValueError:
            known = ", ".join(k.value for k in cls)
            raise ValueError(
                f"config.json: model_type {model_type!r} is not one the creature runs ({known})"
            ) from None


def condition_tensors(kind: ModelKind, lm: Any, batch: int) -> dict:
    """The condition tensors ``LMGen`` needs for ``batch`` streams (empty for Moshi)."""
    from moshi.run_inference import get_condition_tensors

    return get_condition_tensors(kind.value, lm, batch_size=batch, cfg_coef=CFG_COEF)


def sampling_for(cfg: S, lm_gen_config: dict[str, Any] | None) -> S:
    """The sampling to run: keys set in the creature's config (or by the model server's
    flags) win, then the checkpoint's ``lm_gen_config``, then the defaults."""
    given = cfg.model_fields_set
    chosen = {
        key: (lm_gen_config or {})[key]
        for key in LM_GEN_KEYS
        if key not in given and key in (lm_gen_config or {})
    }
    if not chosen:
        return cfg
    try:
        return type(cfg).model_validate({**cfg.model_dump(exclude_unset=True), **chosen})
    except ValidationError as e:
        bad = "; ".join(f"{err['loc'][0]}: {err['msg']}" for err in e.errors())
        raise ValueError(f"config.json: lm_gen_config: {bad}") from None


def is_end_of_passage(token_id: int | None, kind: ModelKind) -> bool:
    """The translation model closed a passage (its EOS); never shown as text."""
    return kind.translates and token_id == EOS_ID


# What moshi_mlx 0.3.0 builds whatever config.json says (its ``LmConfig.from_config_dict``):
# Hibiki 1B/2B fit, Hibiki-Zero does not. config.json key -> the one value it honours.
MLX_LAYOUT: dict[str, Any] = {
    "kv_repeat": 1,
    "depformer_kv_repeat": 1,
    "positional_embedding": "rope",
    "hidden_scale": 4.125,
    "depformer_norm": None,
}


def mlx_unsupported(config: dict[str, Any]) -> list[str]:
    """The config.json settings moshi_mlx cannot run, as ``key value`` (empty: it can)."""
    return [
        f"{key} {config[key]!r}"
        for key, honoured in MLX_LAYOUT.items()
        if key in config and config[key] != honoured
    ]
