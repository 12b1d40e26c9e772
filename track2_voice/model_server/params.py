"""A session's query parameters, with the names Kyutai's clients send.

Kyutai's web client (and the creature's remote backend) put the sampling settings in the
``/api/chat`` URL: ``text_temperature``, ``text_topk``, ``audio_temperature``,
``audio_topk``, ``text_seed``, ``audio_seed``. Here each one applies to that session's slot
only. Parameters the Rust server knows but this server does not implement (``pad_mult``,
``repetition_penalty``, ``repetition_penalty_context``) and unknown ones are ignored, as
Kyutai's Python server ignores them all; a known one with a bad value refuses the session
with a message naming it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from track2_voice.common.errors import CreatureError
from track2_voice.model_server.options import SlotSampling

SEED_BITS = 63  # seeds are int64 tensors on the device
# query name -> (SlotSampling field, type, lower bound)
SAMPLING_PARAMS: dict[str, tuple[str, type, float]] = {
    "text_temperature": ("temp_text", float, 0.0),
    "audio_temperature": ("temp", float, 0.0),
    "text_topk": ("top_k_text", int, 0),
    "audio_topk": ("top_k", int, 0),
    "text_seed": ("seed_text", int, -(2**SEED_BITS)),
    "audio_seed": ("seed_audio", int, -(2**SEED_BITS)),
}
IGNORED_PARAMS = frozenset({"pad_mult", "repetition_penalty", "repetition_penalty_context"})
MAX_TEMPERATURE = 100.0
MAX_TOPK = 1 << 20


class ParamError(CreatureError, ValueError):
    """A query parameter with a value this server cannot use; the message names it."""


def _parse(name: str, raw: str, kind: type, low: float):
    try:
        value = kind(raw) if kind is float else int(raw, 10)
    except ValueError:
        what = "a number" if kind is float else "an integer"
        raise ParamError(f"query parameter {name}: expected {what}, got {raw[:40]!r}") from None
    if kind is float and not (low <= value <= MAX_TEMPERATURE):
        raise ParamError(f"query parameter {name}: expected 0..{MAX_TEMPERATURE:g}, got {raw}")
    if kind is int and not (low <= value < 2**SEED_BITS):
        raise ParamError(f"query parameter {name}: {raw} is out of range")
    if name.endswith("topk") and value > MAX_TOPK:
        raise ParamError(f"query parameter {name}: expected at most {MAX_TOPK}, got {raw}")
    return value


def session_sampling(query: Mapping[str, str], defaults: SlotSampling) -> SlotSampling:
    """The slot's sampling from the URL; seeds not given are drawn at random per session."""
    chosen = {
        "seed_text": secrets.randbits(31),
        "seed_audio": secrets.randbits(31),
    }
    for name, (field, kind, low) in SAMPLING_PARAMS.items():
        raw = query.get(name)
        if raw is not None and raw != "":
            chosen[field] = _parse(name, raw, kind, low)
    return defaults.model_copy(update=chosen)  # each value checked by _parse
