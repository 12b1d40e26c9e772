"""Pieces shared by the tiny-checkpoint writers: the tokenizer, the LM config, the Mimi size."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from track2_voice.backends.tiny_mimi import CARD, CODEBOOKS

# A few sentences are enough for SentencePiece to learn a tiny vocabulary.
TOKENIZER_SENTENCES = [
    "Hello there, I am awake. What can I do for you?",
    "Sure, I will pick up the red cup and bring it to you.",
    "Could you bring me the keys from the kitchen table?",
    "Put the book down on the shelf near the window.",
    "Look at me, I am a small robot with a friendly face.",
    "Open the door and close the drawer, then stop.",
    "Thank you, that was very kind. Anything else today?",
    "The quick brown fox jumps over the lazy dog.",
]
TOKENIZER_VOCAB = 96
TOKENIZER_FILE = "tokenizer_spm_32k_3.model"  # the published name, so loaders find it
TINY_MIMI_FILE = "tokenizer-tiny-mimi.safetensors"


def train_sentencepiece(
    sentences: Iterable[str], vocab_size: int, model_type: str, **options: Any
) -> bytes:
    """A SentencePiece model (its bytes) with Moshi's special ids: 0 unknown, 1 and 2 begin and
    end, 3 padding (the id the LM emits between words). ``options`` go to the trainer."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        character_coverage=1.0,
        minloglevel=2,
        **options,
    )
    return model.getvalue()


def train_tokenizer(out: Path) -> int:
    """Train a SentencePiece model whose special ids match Moshi's: 0 and 3 are padding."""
    import sentencepiece as spm

    model = train_sentencepiece(
        TOKENIZER_SENTENCES * 4, TOKENIZER_VOCAB, "unigram", hard_vocab_limit=False
    )
    out.write_bytes(model)
    sp = spm.SentencePieceProcessor(model_file=str(out))
    return sp.get_piece_size()


def stream_layout(
    dim: int, text_card: int, card: int, codebooks: int, delays: list[int]
) -> dict[str, Any]:
    """The config.json keys that lay out Moshi's token streams: the width, the text
    vocabulary (id 3 pads), two voices of ``codebooks`` audio codebooks each (the depth
    transformer generates the first voice's) and each stream's delay in steps."""
    return {
        "dim": dim,
        "text_card": text_card,
        "existing_text_padding_id": 3,
        "card": card,
        "n_q": 2 * codebooks,
        "dep_q": codebooks,
        "delays": delays,
    }


def lm_config_dict(
    dim: int,
    layers: int,
    text_card: int,
    *,
    heads: int | None = None,
    dep_dim: int | None = None,
    dep_heads: int | None = None,
    dep_ff: int | None = None,
    card: int = CARD,
    **extra: Any,
) -> dict[str, Any]:
    """The keys of Kyutai's config.json for Moshi's architecture (text stream + 8 + 8 audio
    codebooks, acoustic delay 1), at a tiny size; ``extra`` adds backend-specific keys."""
    heads = heads or max(1, dim // 64)
    dep_dim = dep_dim or dim
    return {
        **stream_layout(dim, text_card, card, CODEBOOKS, [0] + ([0] + [1] * (CODEBOOKS - 1)) * 2),
        "num_heads": heads,
        "num_layers": layers,
        "hidden_scale": 4.125,
        "causal": True,
        "layer_scale": None,
        "context": 3000,
        "max_period": 10000,
        "gating": "silu",
        "norm": "rms_norm_f32",
        "positional_embedding": "rope",
        "depformer_dim": dep_dim,
        "depformer_num_heads": dep_heads or heads,
        "depformer_num_layers": 1,
        "depformer_dim_feedforward": dep_ff or 4 * dep_dim,
        "depformer_multi_linear": True,
        "depformer_pos_emb": "none",
        "depformer_weights_per_step": True,
        "depformer_context": CODEBOOKS,
        "depformer_max_period": 10000,
        **extra,
    }
