"""English verb forms for the intent rules: a declared verb ("grab", "take") becomes its base,
-ing and past forms ("grab", "grabbing"; "grabbed"; "take", "taking"; "took", "taken"), so an
action's declaration lists each verb once. The inflection is lemminflect's (its dictionary,
then its rules for words it does not know).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache


class VerbForm(str, Enum):
    BASE = "base"  # "I'll grab it": needs a commitment before it
    ING = "ing"  # "grabbing it now": commits with nothing but "I'm" before it
    PAST = "past"  # "I grabbed it": never fires; named when explaining
    PHRASE = "phrase"  # "on my way to the kitchen": a phrasing that commits by itself


@dataclass(frozen=True)
class Forms:
    base: str
    ing: str
    past: tuple[str, ...]


@lru_cache(maxsize=4096)
def forms(lemma: str) -> Forms:
    """The forms of one verb (a single lower-case word)."""
    from lemminflect import getInflection

    def first(tag: str) -> tuple[str, ...]:
        return tuple(w.lower() for w in getInflection(lemma, tag) or ())

    ing = first("VBG")
    past = tuple(dict.fromkeys(w for w in (*first("VBD"), *first("VBN")) if w != lemma))
    return Forms(lemma, ing[0] if ing else lemma + "ing", past)
