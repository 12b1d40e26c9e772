"""Which recogniser ``voice.transcript.backend`` names."""

from __future__ import annotations

from track2_voice.config import TranscriptConfig
from track2_voice.transcript.base import Recognizer, RecognizerError


def in_process(backend: str, cfg: TranscriptConfig) -> Recognizer:
    if backend == "pocketsphinx":
        from track2_voice.transcript.pocketsphinx_backend import PocketsphinxRecognizer

        return PocketsphinxRecognizer(cfg.pocketsphinx)
    if backend == "kyutai":
        from track2_voice.transcript.kyutai_backend import KyutaiSttRecognizer

        return KyutaiSttRecognizer(cfg.kyutai)
    if backend == "kyutai-remote":
        from track2_voice.transcript.kyutai_remote import KyutaiRemoteRecognizer

        return KyutaiRemoteRecognizer(cfg.kyutai_remote)
    raise RecognizerError(f"voice.transcript.backend: no recogniser {backend!r}")
