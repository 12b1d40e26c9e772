"""The text tap: Moshi's inner-monologue token ids -> text pieces."""

from __future__ import annotations

PADDING_IDS = frozenset({0, 3})  # Moshi's text padding / end-of-padding tokens
SPM_SPACE = "\u2581"  # SentencePiece's word-boundary marker "▁"


def piece_text(tokenizer, token_id: int) -> str | None:
    """A printable piece for a text token, or None for padding. Works with any
    SentencePieceProcessor-like object that has ``id_to_piece``."""
    if token_id in PADDING_IDS:
        return None
    piece = tokenizer.id_to_piece(int(token_id))
    return piece.replace(SPM_SPACE, " ")
