"""The viseme track of a voice session, built from its config (``face.lipsync: visemes``).

Checked when the session is wired, before any audio or model is opened: a bad viseme file or a
missing espeak-ng is one clear line (exit 2), not a face that silently stops shaping words.
"""

from __future__ import annotations

from typing import Any

from affect.visemes import VisemeError, VisemeSet
from orchestrator.brain.g2p import G2PError, Phonemizer
from orchestrator.brain.viseme_track import VisemeTracker
from orchestrator.config import CreatureConfig
from orchestrator.data_files import load_visemes
from track2_voice.common.errors import ConfigError


def viseme_set(cfg: CreatureConfig) -> VisemeSet | None:
    if cfg.face.lipsync != "visemes":
        return None
    try:
        return load_visemes(cfg.face.visemes.file)
    except VisemeError as e:
        raise ConfigError(f"face.visemes.file: {e}") from None


def build_viseme_tracker(cfg: CreatureConfig) -> VisemeTracker | None:
    """The tracker for this session's backend, or None with ``face.lipsync: rms``."""
    vs = viseme_set(cfg)
    if vs is None:
        return None
    vc = cfg.face.visemes
    try:
        g2p = Phonemizer(vc.language)
    except G2PError as e:
        raise ConfigError(f"face.lipsync: visemes: {e}; or set face.lipsync: rms") from None
    except RuntimeError as e:  # espeak-ng has no such voice
        raise ConfigError(f"face.visemes.language: {vc.language!r}: {e}") from None
    return VisemeTracker(
        vs,
        g2p.phonemes,
        lead_frames=vc.text_lead_frames[cfg.voice.backend],
        lookahead_frames=vc.lookahead_frames,
        gate_db=vc.gate_db,
    )


def page_visemes(cfg: CreatureConfig) -> dict[str, Any] | None:
    """What the face page draws visemes with (/visemes.json), or None with lipsync rms."""
    vs = viseme_set(cfg)
    return vs.page_data() if vs is not None else None
