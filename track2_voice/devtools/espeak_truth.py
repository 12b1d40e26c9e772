"""Speech with known phoneme timings: espeak-ng speaks a sentence and reports, as it speaks,
where each word and each phoneme starts in its audio (its phoneme events).

Why: to measure lip-sync against ground truth, the truth must come from the same synthesis as
the audio. espeak-ng's library reports ``espeakEVENT_WORD`` and ``espeakEVENT_PHONEME`` with
their audio positions; the command line cannot (``--pho`` needs an mbrola voice). The library
is the one ``espeakng-loader`` ships (or the system's libespeak-ng).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from track2_voice.frames import SAMPLE_RATE

AUDIO_OUTPUT_SYNCHRONOUS = 2
INIT_PHONEME_EVENTS = 0x0001
INIT_PHONEME_IPA = 0x0002
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_END, EVENT_PHONEME = 0, 1, 5, 7
PARAM_RATE = 1


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Timed:
    """A word or a phoneme from ``start`` to ``end`` seconds in the spoken audio."""

    text: str
    start: float
    end: float


@dataclass
class Spoken:
    pcm: np.ndarray  # float32 mono at the creature's 24 kHz
    words: list[Timed]
    phonemes: list[Timed]  # IPA as espeak-ng writes it; pauses are "_" phonemes


def _library() -> tuple[str, str | None]:
    try:
        import espeakng_loader

        data = Path(espeakng_loader.get_data_path())
        return espeakng_loader.get_library_path(), str(data.parent)
    except ImportError:
        found = ctypes.util.find_library("espeak-ng")
        if found is None:
            raise RuntimeError("no espeak-ng library: pip install espeakng-loader") from None
        return found, None


class EspeakTruth:
    """One espeak-ng instance (the library keeps global state: use one per process)."""

    def __init__(self, voice: str = "en-us", rate_wpm: int = 150) -> None:
        lib_path, data_dir = _library()
        self.lib = lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        self.rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            data_dir.encode() if data_dir else None,
            INIT_PHONEME_EVENTS | INIT_PHONEME_IPA,
        )
        if self.rate <= 0:
            raise RuntimeError(f"espeak-ng did not start (data in {data_dir})")
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(PARAM_RATE, rate_wpm, 0)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str]] = []
        self._cb = _CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._cb)

    def set_rate(self, rate_wpm: int) -> None:
        self.lib.espeak_SetParameter(PARAM_RATE, rate_wpm, 0)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768)
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type in (EVENT_WORD, EVENT_PHONEME, EVENT_END):
                name = e.id.string.decode("utf-8", "replace") if e.type == EVENT_PHONEME else ""
                self._events.append((e.type, e.audio_position, e.text_position, name))
                if e.type == EVENT_WORD:
                    self._events[-1] = (e.type, e.audio_position, e.text_position, str(e.length))
            i += 1
        return 0

    def speak(self, text: str) -> Spoken:
        import soxr

        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        raw = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        pcm = soxr.resample(raw, self.rate, SAMPLE_RATE).astype(np.float32)
        total = raw.size / self.rate
        end_s = total
        words, phonemes = [], []
        encoded = text.encode("utf-8")
        word_ev = [(a / 1000, pos, int(n)) for k, a, pos, n in self._events if k == EVENT_WORD]
        for i, (start, pos, length) in enumerate(word_ev):
            # text_position counts characters from 1; the words are cut from the text itself
            word = text[pos - 1 : pos - 1 + length] if pos > 0 else encoded.decode()
            stop = word_ev[i + 1][0] if i + 1 < len(word_ev) else end_s
            words.append(Timed(word, start, stop))
        ph_ev = [(a / 1000, n) for k, a, _, n in self._events if k == EVENT_PHONEME]
        for i, (start, name) in enumerate(ph_ev):
            stop = ph_ev[i + 1][0] if i + 1 < len(ph_ev) else end_s
            if stop > start:
                phonemes.append(Timed(name, start, stop))
        return Spoken(pcm, words, phonemes)
