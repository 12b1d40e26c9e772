"""Text as the intent rules read it: the creature's sentence normalized the way people say it
and the way Moshi's inner monologue writes it: lower case, straight quotes, single spaces,
casual spellings rewritten ("gonna"), spoken fillers dropped ("uh", "um") and words said twice
in a row said once ("I'll I'll get it", "the, the window"). Every word list is data
(``text`` in configs/intents.yaml); this module only applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": ","})
TOKEN = r"[a-z0-9']+"


@dataclass(frozen=True)
class TextRules:
    spellings: re.Pattern[str] | None
    spelling_map: dict[str, str]
    fillers: re.Pattern[str] | None
    ill: re.Pattern[str] | None
    repeat: re.Pattern[str] | None


def compile_text_rules(raw: dict, compile_rx) -> TextRules:
    """``raw`` is the ``text`` mapping of an intents file; ``compile_rx(key, pattern)`` compiles
    with errors that name the file and key."""
    spell = {str(k).lower(): str(v) for k, v in (raw.get("spellings") or {}).items()}
    spell_rx = None
    if spell:
        words = "|".join(re.escape(w) for w in sorted(spell, key=len, reverse=True))
        spell_rx = compile_rx("text.spellings", rf"(?<![a-z0-9'])(?:{words})(?![a-z0-9'])")
    fillers = raw.get("spoken_fillers")
    fill_rx = None
    if fillers:
        # a filler with the commas around it goes, leaving one space: "the, uh, the" -> "the the"
        fill_rx = compile_rx(
            "text.spoken_fillers", rf"(?:, ?)?(?<![a-z0-9'])(?:{fillers})(?![a-z0-9'])(?: ?,)?"
        )
    ill_after = raw.get("ill_after")
    ill_rx = (
        compile_rx("text.ill_after", rf"(^|[,;.!?] ?|\b(?:{ill_after}) )ill\b")
        if ill_after
        else None
    )
    n = int(raw.get("repeat_max_words", 0) or 0)
    rep_rx = None
    if n > 0:
        rep_rx = re.compile(
            rf"(?<![a-z0-9'])({TOKEN}(?: {TOKEN}){{0,{n - 1}}})(?:,? \1)+(?![a-z0-9'])"
        )
    return TextRules(spell_rx, spell, fill_rx, ill_rx, rep_rx)


def normalize(text: str, rules: TextRules | None = None) -> str:
    """The form every rule is written against."""
    t = " ".join(text.translate(QUOTES).lower().split())
    if rules is None or not t:
        return t
    if rules.spellings is not None:
        t = rules.spellings.sub(lambda m: rules.spelling_map[m.group(0)], t)
    if rules.ill is not None:
        t = rules.ill.sub(lambda m: m.group(1) + "i'll", t)
    if rules.fillers is not None:
        t = rules.fillers.sub(" ", t)
    t = " ".join(t.split())
    if rules.repeat is not None:
        for _ in range(3):  # "let me let me" inside "okay okay": bounded, usually one pass
            new = rules.repeat.sub(r"\1", t)
            if new == t:
                break
            t = new
    t = re.sub(r" ?([,;.!?])(?: ?[,;])+", r"\1", t)  # ", ," left by a dropped filler
    t = " ".join(t.split())
    return t.lstrip(" ,;")
