"""The newest per-frame timings of a session, in a fixed amount of memory.

Why: the loop's summary reports step and overhead percentiles, and a list that kept every
frame's figures grew by ~64 bytes a frame, 2.9 MB an hour and 69 MB a day of a creature that
is never restarted (the hour-long soak showed it). A ring of the newest ``KEEP_FRAMES`` frames
(87 minutes at 80 ms) is what a percentile of "how is it running now" needs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

KEEP_FRAMES = 1 << 16  # 65,536 frames: 87 minutes at 80 ms a frame, 512 KiB a series


class RecentTimings:
    """Append one figure a frame; read the kept ones oldest first (``len``, iteration and
    ``np.asarray`` work as on the list it replaces)."""

    def __init__(self, keep: int = KEEP_FRAMES) -> None:
        self._buf = np.zeros(keep, np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        self._buf[self._n % self._buf.size] = value
        self._n += 1

    @property
    def total(self) -> int:
        """Every figure ever appended (the kept ones are the newest ``len(self)``)."""
        return self._n

    def since(self, total: int) -> np.ndarray:
        """The figures appended after the first ``total`` (those still kept)."""
        return self.values()[len(self) - min(len(self), max(0, self._n - total)) :]

    def values(self) -> np.ndarray:
        keep = self._buf.size
        if self._n <= keep:
            return self._buf[: self._n].copy()
        start = self._n % keep
        return np.concatenate((self._buf[start:], self._buf[:start]))

    def __len__(self) -> int:
        return min(self._n, self._buf.size)

    def __iter__(self) -> Iterator[float]:
        return iter(self.values().tolist())

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        v = self.values()
        return v if dtype is None else v.astype(dtype)
