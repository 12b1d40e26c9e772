"""The session record: every event as one JSON line, written on its own thread.

Why a thread and not the I/O loop: file writes can stall on a slow disk, and the record must
not delay the face or the robot channel; its queue is large so it rarely drops anything.

Why these rules: the record of a crashed session is evidence, so a record is opened with
``x`` (an existing file is never truncated), flushed to the OS at least every
``FLUSH_EVERY_S`` (a ``kill -9`` loses at most that much) and fsync'd when the session stops.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from orchestrator.bus import Bus, SubscriberThread
from track2_voice.common.errors import UserError
from track2_voice.events import Event

FLUSH_EVERY_S = 1.0


class RecordError(UserError, ValueError):
    """The record file cannot be written (its folder is missing, it exists, ...)."""


class JsonlRecorder(SubscriberThread):
    def __init__(self, path: str | Path, bus: Bus, maxsize: int = 65536) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise RecordError(f"--record {self.path}: folder {self.path.parent} does not exist")
        try:
            # 0600: a record holds what was said in the room
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._fh = os.fdopen(fd, "w", encoding="utf-8")
        except FileExistsError:
            raise RecordError(
                f"--record {self.path}: exists; a record is never overwritten"
            ) from None
        except OSError as e:
            raise RecordError(f"--record {self.path}: cannot write it ({e.strerror})") from None
        self.lines = 0
        self.flushes = 0
        self._flushed_at = time.monotonic()
        super().__init__(bus, "record", maxsize)

    def _write(self, d: dict[str, Any]) -> None:
        self._fh.write(json.dumps(d, ensure_ascii=False, default=str) + "\n")
        self.lines += 1

    def consume(self, events: list[Event]) -> None:
        for ev in events:
            self._write(ev.to_dict())

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._flushed_at >= FLUSH_EVERY_S:
            self._fh.flush()
            self.flushes += 1
            self._flushed_at = now

    def close(self) -> None:
        self.stop(drain=True)
        if self.dropped:
            self._write({"kind": "record_dropped", "count": self.dropped})
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
