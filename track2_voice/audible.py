"""What counts as the creature's voice when latency is measured: one loudness threshold, shared
by the time-to-first-audio bench (``creature bench ttfat``) and the turn analysis of a record
(``orchestrator/analysis/turns.py``), so the live figures and the bench always agree."""

from __future__ import annotations

VOICE_DB = -45.0  # dBFS: returned audio louder than this counts as "the voice"
