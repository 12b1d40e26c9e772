"""The playout buffer between a network thread (push) and the fast loop (pop).

Alignment rule for text: Kyutai's servers send each model step's audio frame and then that
step's text piece, so a text piece belongs to the audio frame received just before it. If
that frame has already been played, the piece goes out with the next frame played (at most
one frame late); text that arrives before any audio waits for the next frame played. Text
is never dropped, even when its frame is (the buffer over-filled).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class PlayoutFrame:
    pcm: np.ndarray
    t_arrival: float
    text: list[str] = field(default_factory=list)


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    underruns: int = 0  # times playback ran dry and had to re-prime
    dropped: int = 0  # frames dropped because the buffer was over-full
    late_text: int = 0  # pieces whose frame had already been played


class JitterBuffer:
    """Thread-safe; ``pop`` never waits. Playback starts (and restarts after running dry) once
    ``prime_frames`` are buffered; beyond ``max_frames`` the oldest frame is dropped so the
    delay stays bounded."""

    def __init__(self, prime_frames: int = 1, max_frames: int = 8) -> None:
        if prime_frames < 1 or max_frames < prime_frames:
            raise ValueError("need 1 <= prime_frames <= max_frames")
        self.prime_frames = prime_frames
        self.max_frames = max_frames
        self.stats = JitterStats()
        self._frames: deque[PlayoutFrame] = deque()
        self._last: PlayoutFrame | None = None  # latest frame received, while still queued
        self._loose_text: list[str] = []  # goes out with the next frame played
        self._priming = True
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._frames)

    def push_audio(self, pcm: np.ndarray, t_arrival: float) -> None:
        frame = PlayoutFrame(pcm, t_arrival)
        with self._lock:
            self.stats.received += 1
            self._frames.append(frame)
            self._last = frame
            while len(self._frames) > self.max_frames:
                old = self._frames.popleft()
                self.stats.dropped += 1
                self._loose_text.extend(old.text)

    def push_text(self, piece: str) -> None:
        with self._lock:
            if self._last is not None:
                self._last.text.append(piece)
            else:
                self._loose_text.append(piece)
                self.stats.late_text += 1

    def pop(self) -> tuple[PlayoutFrame | None, str | None]:
        """The next frame to play (None: play silence) and the text that goes with it."""
        with self._lock:
            frame = None
            if self._priming and len(self._frames) >= self.prime_frames:
                self._priming = False
            if not self._priming:
                if self._frames:
                    frame = self._frames.popleft()
                    if frame is self._last:
                        self._last = None
                    self.stats.played += 1
                else:  # ran dry: wait for prime_frames again before playing on
                    self._priming = True
                    self.stats.underruns += 1
            pieces = self._loose_text + (frame.text if frame is not None else [])
            self._loose_text = []
        return frame, ("".join(pieces) if pieces else None)

    def clear(self) -> None:
        """Forget buffered audio (a new session); pending text is kept for the next frame."""
        with self._lock:
            for f in self._frames:
                self._loose_text.extend(f.text)
            self._frames.clear()
            self._last = None
            self._priming = True
