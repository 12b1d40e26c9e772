"""The text tap: Moshi's inner-monologue token ids -> text pieces."""

from __future__ import annotations

PADDING_IDS = frozenset({0, 3})  # Moshi's text padding / end-of-padding tokens
BOS_ID = 1  # SentencePiece's <s>: a marker a random or confused model can sample, never a word
EOS_ID = 2  # SentencePiece's </s>: Hibiki ends a translated passage with it
EOS_PIECE = "</s>"  # ... and Kyutai's hibiki-zero server sends it to clients as this text
SPM_SPACE = "\u2581"  # SentencePiece's word-boundary marker "▁"


def piece_text(tokenizer, token_id: int) -> str | None:
    """A printable piece for a text token, or None for padding and the sequence markers
    ``<s>``/``</s>`` (never words). Works with any SentencePieceProcessor-like object that has
    ``id_to_piece``."""
    if token_id in PADDING_IDS or token_id in (BOS_ID, EOS_ID):
        return None
    piece = tokenizer.id_to_piece(int(token_id))
    return piece.replace(SPM_SPACE, " ")


def split_end_marker(text: str) -> tuple[str, bool]:
    """Text from a server that sends EOS as the piece ``</s>`` (Kyutai's hibiki-zero serve):
    the text without it, and whether it was there."""
    if EOS_PIECE not in text:
        return text, False
    return text.replace(EOS_PIECE, ""), True
