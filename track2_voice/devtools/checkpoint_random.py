"""Random-weight PyTorch Moshi checkpoints in the published layout, tiny or full size.

``--size full`` is Moshi 7B + Mimi with the shapes of ``kyutai/moshiko-pytorch-bf16``
(moshi's own default configs), so the real compute cost of a model server can be measured
on a GPU without the hub: 7.7 B bfloat16 parameters, about 15 GB on disk. The LM is written
tensor by tensor (a streaming safetensors writer), so memory stays at the largest tensor
(~0.5 GB), never the whole model.

``--size tiny`` is the same writer at a size that runs many times real time on one CPU
core. Unlike ``creature checkpoint tiny``, its Mimi *hears*: the codebooks are initialised
by the quantizer's own k-means on latents of varied sounds, so the codes (and so the LM's
answer) follow the input. Tests need that to tell one session's audio from another's.

Layout::

    config.json                                   LM config + file names (relative)
    model.safetensors                             the LM (bfloat16 full, float32 tiny)
    tokenizer-e351c8d8-checkpoint125.safetensors  Mimi (the published name)
    mimi_config.json                              tiny only: the small Mimi's config
    tokenizer_spm_32k_3.model                     SentencePiece, one piece per text id
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from track2_voice.common.errors import UserError
from track2_voice.devtools.random_lm import (
    ST_DTYPES,
    lm_tensors,
    safetensors_header,
    write_lm,
)
from track2_voice.devtools.random_mimi import hearing_mimi_state, random_mimi_state
from track2_voice.devtools.tiny_common import train_sentencepiece

SIZES = ("tiny", "full")
LM_NAME = "model.safetensors"
MIMI_NAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
MIMI_CONFIG_NAME = "mimi_config.json"
TOKENIZER_NAME = "tokenizer_spm_32k_3.model"
CONFIG_NAME = "config.json"


class CheckpointError(UserError, ValueError):
    """A size or option the writer cannot honour; the message names it."""


# -- configs ---------------------------------------------------------------------------------


def lm_config(size: str, dim: int = 64, layers: int = 1) -> dict[str, Any]:
    """The LM keys of config.json: moshi's published 7B config, or the tiny one."""
    from track2_voice.devtools.checkpoint_torch import tiny_lm_config

    if size == "full":
        from moshi.models.loaders import _lm_kwargs

        return dict(_lm_kwargs)
    if size == "tiny":
        if dim < 32 or dim % 32:
            raise CheckpointError(f"--dim must be a positive multiple of 32, got {dim}")
        if layers < 1:
            raise CheckpointError(f"--layers must be at least 1, got {layers}")
        return tiny_lm_config(dim, layers, text_card=vocab_size("tiny"))
    raise CheckpointError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")


def mimi_config(size: str) -> dict[str, Any]:
    from track2_voice.devtools.checkpoint_torch import tiny_mimi_config

    if size == "full":
        from moshi.models.loaders import _mimi_config

        return json.loads(json.dumps(_mimi_config))
    return tiny_mimi_config()


def vocab_size(size: str) -> int:
    """Text ids the LM emits; the tokenizer gets exactly as many pieces."""
    return 32000 if size == "full" else 256


def moshi_config(size: str, lm_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The whole config.json around the LM keys ``lm_kwargs``."""
    config: dict[str, Any] = {
        **lm_kwargs,
        "model_type": "moshi",
        "moshi_name": LM_NAME,
        "mimi_name": MIMI_NAME,
        "tokenizer_name": TOKENIZER_NAME,
    }
    if size == "tiny":  # the full Mimi is moshi's default config: no file needed
        config["mimi_config_name"] = MIMI_CONFIG_NAME
    return config


def moshi_checkpoint_config(size: str, dim: int = 64, layers: int = 1) -> dict[str, Any]:
    """The whole config.json of a Moshi checkpoint of ``size``."""
    return moshi_config(size, lm_config(size, dim, layers))


def checkpoint_files(config: dict[str, Any]) -> list[str]:
    """The files a checkpoint holds, by the names its config.json gives them."""
    names = [CONFIG_NAME, config["moshi_name"], config["mimi_name"], config["tokenizer_name"]]
    return names + ([config["mimi_config_name"]] if "mimi_config_name" in config else [])


@functools.lru_cache(maxsize=4)
def tensors_for(size: str, dim: int = 64, layers: int = 1, dtype: str | None = None):
    """``lm_tensors`` of a size (cached: building the 7B model on the meta device takes a
    few seconds)."""
    return tuple(lm_tensors(lm_config(size, dim, layers), lm_dtype(size, dtype)))


def lm_dtype(size: str, dtype: str | None) -> str:
    """bfloat16 for the full model (as published), float32 for the tiny one (CPU)."""
    dtype = dtype or ("bfloat16" if size == "full" else "float32")
    if dtype not in ST_DTYPES:
        raise CheckpointError(f"--dtype must be one of {', '.join(ST_DTYPES)}, got {dtype!r}")
    return dtype


def describe_checkpoint(size: str, dim: int = 64, layers: int = 1, dtype: str | None = None) -> str:
    """What ``write_random_checkpoint`` would write, from shapes on the meta device (JSON)."""
    config = moshi_checkpoint_config(size, dim, layers)
    dtype = lm_dtype(size, dtype)
    return describe(config, list(tensors_for(size, dim, layers, dtype)), size, dtype)


def describe(
    config: dict[str, Any],
    tensors: list[tuple[str, tuple, str]],
    size: str,
    dtype: str,
    **head: Any,
) -> str:
    """The dry run's JSON line for a checkpoint of ``config`` whose LM holds ``tensors``
    (``head``: keys put first)."""
    params = sum(math.prod(shape) for _, shape, _ in tensors)
    itemsize = 4 if dtype == "float32" else 2
    info = {
        **head,
        "size": size,
        "lm_dtype": dtype,
        "lm_tensors": len(tensors),
        "lm_parameters": params,
        "lm_file_bytes": len(safetensors_header(tensors, dtype)) + params * itemsize,
        "dim": config["dim"],
        "layers": config["num_layers"],
        "text_card": config["text_card"],
        "files": checkpoint_files(config),
    }
    return json.dumps(info)


# -- the tokenizer ------------------------------------------------------------------------------

SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]


def write_tokenizer(path: Path, pieces: int) -> int:
    """A SentencePiece word model with exactly ``pieces`` ids (ids 0 and 3 are padding, as
    Moshi expects), trained on made-up words: every id the LM emits has a piece."""
    import sentencepiece as spm

    needed = pieces + 64
    words = ("".join(p) for n in (1, 2, 3) for p in itertools.product(SYLLABLES, repeat=n))
    vocab = list(itertools.islice(words, needed))
    sentences = [" ".join(vocab[i : i + 10]) for i in range(0, len(vocab), 10)]
    model = train_sentencepiece(sentences, pieces, "word")
    path.write_bytes(model)
    return spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()


# -- the whole checkpoint ---------------------------------------------------------------------


LOADER_KEYS = frozenset(
    {"model_type", "moshi_name", "mimi_name", "tokenizer_name", "mimi_config_name", "lm_gen_config"}
)  # config.json keys that are for the loaders, not the LM


def lm_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """What ``get_moshi_lm`` takes: ``config`` less the file names and loader keys (a deep
    copy: moshi's conditioner factory writes into the dicts it is given)."""
    return copy.deepcopy({k: v for k, v in config.items() if k not in LOADER_KEYS})


@dataclass(frozen=True)
class ModelFamily:
    """A family of models the random writer fills (Moshi, Hibiki): how its whole config.json
    follows from ``--size``/``--dim``/``--layers``, and its Mimi's config from ``--size``
    (None: moshi's default Mimi). Writing one is the same for every family."""

    config: Callable[[str, int, int], dict[str, Any]]
    mimi_config: Callable[[str], dict[str, Any] | None]

    def write(
        self,
        out: Path | str,
        size: str = "tiny",
        seed: int = 0,
        dim: int = 64,
        layers: int = 1,
        dtype: str | None = None,
    ) -> list[Path]:
        """Write the checkpoint into ``out`` (created); returns the files written."""
        config = self.config(size, dim, layers)
        dtype = lm_dtype(size, dtype)
        mimi_cfg = self.mimi_config(size)
        return write_checkpoint(
            out, config, lm_kwargs(config), mimi_cfg, dtype, seed, size == "tiny"
        )


MOSHI = ModelFamily(moshi_checkpoint_config, mimi_config)
write_random_checkpoint = MOSHI.write


def write_checkpoint(
    out: Path | str,
    config: dict[str, Any],
    lm_kwargs: dict[str, Any],
    mimi_cfg: dict[str, Any] | None,
    dtype: str,
    seed: int,
    hearing: bool,
) -> list[Path]:
    """Write a checkpoint of the whole ``config.json`` ``config`` into ``out`` (created):
    the tokenizer, Mimi from ``mimi_cfg`` (one that hears if ``hearing``, else random
    centroids; its config file too where ``config`` names one), the LM of ``lm_kwargs``
    streamed tensor by tensor, then config.json. Returns the files written, config first."""
    import torch
    from moshi.models.loaders import get_mimi
    from safetensors.torch import save_file

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = []

    tok = out / config["tokenizer_name"]
    pieces = write_tokenizer(tok, config["text_card"])
    if pieces != config["text_card"]:
        raise CheckpointError(f"tokenizer has {pieces} pieces, the LM {config['text_card']}")
    files.append(tok)

    torch.manual_seed(seed)
    # as moshi's CheckpointInfo.get_mimi: an STT model hears n_q codebooks and speaks none
    codebooks = max(config["dep_q"], config["n_q"] - config["dep_q"])
    mimi = get_mimi(None, mimi_cfg, device="cpu", num_codebooks=codebooks)
    state = hearing_mimi_state(mimi, seed) if hearing else random_mimi_state(mimi, seed)
    mimi_path = out / config["mimi_name"]
    save_file(state, str(mimi_path))
    files.append(mimi_path)
    if "mimi_config_name" in config:
        mcfg_path = out / config["mimi_config_name"]
        mcfg_path.write_text(json.dumps(mimi_cfg, indent=2))
        files.append(mcfg_path)

    lm_path = out / config["moshi_name"]
    write_lm(lm_path, lm_kwargs, dtype, seed)
    files.append(lm_path)
    cfg_path = out / CONFIG_NAME
    cfg_path.write_text(json.dumps(config, indent=2))
    files.insert(0, cfg_path)
    return files
