"""The session record: every event as one JSON line, written on its own thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from track2_voice.events import Event, EventHub, SubscriberThread


class JsonlRecorder(SubscriberThread):
    def __init__(self, path: str | Path, hub: EventHub, maxsize: int = 65536) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise FileNotFoundError(f"{self.path}: directory {self.path.parent} does not exist")
        self._fh = self.path.open("w", encoding="utf-8")
        self.lines = 0
        super().__init__(hub, "record", maxsize)

    def _write(self, d: dict[str, Any]) -> None:
        self._fh.write(json.dumps(d, ensure_ascii=False, default=str) + "\n")
        self.lines += 1

    def consume(self, events: list[Event]) -> None:
        for ev in events:
            self._write(ev.to_dict())

    def write_extra(self, d: dict[str, Any]) -> None:
        """For events from outside the hub (called from the recorder's owner, at the end)."""
        self._write(d)

    def close(self) -> None:
        self.stop(drain=True)
        if self.dropped:
            self._write({"kind": "record_dropped", "count": self.dropped})
        self._fh.close()
