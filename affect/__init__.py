"""Affect: pure functions and data (Ekman presets, valence/arousal). Imports no project package."""
