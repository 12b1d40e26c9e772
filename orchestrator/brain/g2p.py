"""Words -> phonemes with espeak-ng (through ``phonemizer``), cached per word.

Why espeak-ng: it is maintained, covers the languages Moshi speaks, and has letter-to-sound
rules, so numbers ("42" -> forty-two), names and words no dictionary has still get plausible
phonemes. The ``espeakng-loader`` package ships the library and its data, so nothing is
downloaded at run time; without it the system's libespeak-ng is used (Debian: espeak-ng).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

from track2_voice.common.errors import CreatureError

log = logging.getLogger(__name__)
CACHE_WORDS = 4096  # distinct words remembered (a conversation uses a few hundred)
# what a word keeps: letters (any script), digits, apostrophes inside words, decimal points
_NOT_WORD = re.compile(r"[^\w'’.]+|(?<!\d)\.|\.(?!\d)|_")


class G2PError(CreatureError, RuntimeError):
    """espeak-ng could not be loaded: the message says what to install."""


def clean_word(text: str) -> str:
    """A text piece as a word to phonemize: punctuation and spaces removed."""
    return _NOT_WORD.sub("", text).strip("'’")


def _espeak_backend(language: str):
    try:
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
    except ImportError as e:
        raise G2PError(f"phonemizer is not installed ({e}): pip install phonemizer") from None
    try:  # the library and data shipped as a package, when installed
        import espeakng_loader

        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    except ImportError:
        pass
    quiet = logging.getLogger("phonemizer")
    quiet.setLevel(logging.ERROR)
    try:
        return EspeakBackend(language, with_stress=True, logger=quiet)
    except RuntimeError as e:
        raise G2PError(
            f"espeak-ng is not usable ({e}): pip install espeakng-loader, or apt-get install espeak-ng"
        ) from None


class Phonemizer:
    """``phonemes(word)`` -> IPA phonemes as espeak-ng writes them, one per item, with their
    stress marks (a stressed vowel lasts longer: the tracker times it so)."""

    def __init__(self, language: str = "en-us", cache_words: int = CACHE_WORDS) -> None:
        from phonemizer.separator import Separator

        self.language = language
        self._backend = _espeak_backend(language)
        self._sep = Separator(phone=" ", word="|", syllable="")
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._cache_words = cache_words
        self.lookups = 0
        self.misses = 0

    @property
    def version(self) -> str:
        return ".".join(str(x) for x in self._backend.version())

    def phonemes(self, text: str) -> tuple[str, ...]:
        word = clean_word(text).lower()
        self.lookups += 1
        if not word:
            return ()
        hit = self._cache.get(word)
        if hit is not None:
            self._cache.move_to_end(word)
            return hit
        self.misses += 1
        out = self._backend.phonemize([word], separator=self._sep, strip=True)
        result = tuple(out[0].replace("|", " ").split()) if out else ()
        self._cache[word] = result
        if len(self._cache) > self._cache_words:
            self._cache.popitem(last=False)
        return result
