"""The creature's fast loop: 80 ms audio frames through Moshi, lip-sync and the text tap.

This package imports nothing from ``orchestrator``, ``face`` or ``affect``.
"""

from track2_voice.frames import FRAME_MS, FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, Frame

__all__ = ["FRAME_MS", "FRAME_SAMPLES", "FRAME_SECONDS", "SAMPLE_RATE", "Frame"]
