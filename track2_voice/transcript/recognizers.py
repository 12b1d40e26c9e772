"""Which recogniser ``voice.transcript.backend`` names, built in this process or a child."""

from __future__ import annotations

from track2_voice.config import TranscriptConfig
from track2_voice.transcript.base import Recognizer, RecognizerError


def in_process(backend: str, cfg: TranscriptConfig) -> Recognizer:
    if backend == "pocketsphinx":
        from track2_voice.transcript.pocketsphinx_backend import PocketsphinxRecognizer

        return PocketsphinxRecognizer(cfg.pocketsphinx)
    if backend == "kyutai-remote":
        from track2_voice.transcript.kyutai_remote import KyutaiRemoteRecognizer

        return KyutaiRemoteRecognizer(cfg.kyutai_remote)
    raise RecognizerError(f"voice.transcript.backend: no recogniser {backend!r}")


def create_recognizer(cfg: TranscriptConfig, live: bool) -> Recognizer:
    """``live``: the recogniser must not share the fast loop's GIL while it computes, so a
    CPU-bound one runs in a child process (a network client waits on sockets, which frees it)."""
    if live and cfg.backend == "pocketsphinx":
        from track2_voice.transcript.child import ChildRecognizer

        return ChildRecognizer(cfg.backend, cfg.model_dump_json())
    return in_process(cfg.backend, cfg)
