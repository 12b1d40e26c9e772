"""Chromium with a fake microphone that plays a WAV, for the phone-audio tests and benchmark."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
SPEECH = "Hello creature, could you pick up the red cup for me please?"


def chromium_args(mic_wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--ignore-certificate-errors",  # the creature's self-signed certificate
    ]


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK)


def make_mic_wav(path: Path, text: str = SPEECH) -> Path:
    """Real speech (espeak-ng) at 48 kHz with pauses around it: the fake mic loops the file."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(
        ["sox", str(raw), "-r", "48000", str(path), "pad", "0.5", "1.5"],
        check=True,
        capture_output=True,
    )
    return path
