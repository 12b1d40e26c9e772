"""The session record: every event as one JSON line, written on its own thread.

Why a thread and not the I/O loop: file writes can stall on a slow disk, and the record must
not delay the face or the robot channel; its queue is large so it rarely drops anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.bus import Bus, SubscriberThread
from track2_voice.events import Event


class JsonlRecorder(SubscriberThread):
    def __init__(self, path: str | Path, bus: Bus, maxsize: int = 65536) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise FileNotFoundError(f"{self.path}: directory {self.path.parent} does not exist")
        self._fh = self.path.open("w", encoding="utf-8")
        self.lines = 0
        super().__init__(bus, "record", maxsize)

    def _write(self, d: dict[str, Any]) -> None:
        self._fh.write(json.dumps(d, ensure_ascii=False, default=str) + "\n")
        self.lines += 1

    def consume(self, events: list[Event]) -> None:
        for ev in events:
            self._write(ev.to_dict())

    def close(self) -> None:
        self.stop(drain=True)
        if self.dropped:
            self._write({"kind": "record_dropped", "count": self.dropped})
        self._fh.close()
