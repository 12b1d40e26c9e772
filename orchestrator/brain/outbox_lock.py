"""One creature process per outbox: the lock file beside ``outbox.sqlite3``."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_SUFFIX = ".lock"


class OutboxLock:
    """One creature process owns an outbox: an exclusive ``flock`` on ``OUTBOX.lock`` beside
    it, held for the process's life (the kernel drops it when the process dies, so a crash
    leaves no stale lock). A second creature on the same file would send the first one's calls
    to its own robot; it is refused instead. The file holds the owner's pid, for the message."""

    def __init__(self, outbox_path: Path) -> None:
        self.path = outbox_path.with_name(outbox_path.name + LOCK_SUFFIX)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when this process now owns the outbox; False when another one does."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def owner(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
