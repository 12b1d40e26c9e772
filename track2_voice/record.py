"""The session record: every event as one JSON line, written on its own thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from track2_voice.events import EventHub


class JsonlRecorder:
    def __init__(self, path: str | Path, hub: EventHub, maxsize: int = 65536) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise FileNotFoundError(f"{self.path}: directory {self.path.parent} does not exist")
        self._fh = self.path.open("w", encoding="utf-8")
        self._sub = hub.subscribe("record", maxsize)
        self._sub.use_thread_wakeup()
        self._stop = threading.Event()
        self.lines = 0
        self._thread = threading.Thread(target=self._run, name="jsonl-record", daemon=True)
        self._thread.start()

    def _write(self, d: dict[str, Any]) -> None:
        self._fh.write(json.dumps(d, ensure_ascii=False, default=str) + "\n")
        self.lines += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            ev = self._sub.wait(0.1)
            if ev is not None:
                self._write(ev.to_dict())

    def write_extra(self, d: dict[str, Any]) -> None:
        """For events from outside the hub (called from the recorder's owner, at the end)."""
        self._write(d)

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for ev in self._sub.drain():
            self._write(ev.to_dict())
        if self._sub.dropped:
            self._write({"kind": "record_dropped", "count": self._sub.dropped})
        self._fh.close()
