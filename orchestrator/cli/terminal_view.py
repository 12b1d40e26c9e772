"""A terminal stand-in for the face: the creature's words as they come and a mouth meter."""

from __future__ import annotations

import sys

from track2_voice.events import Event, EventHub, SubscriberThread

METER_WIDTH = 20


class TerminalView(SubscriberThread):
    def __init__(self, hub: EventHub, stream=None) -> None:
        self.out = stream or sys.stdout
        self.tty = self.out.isatty()
        self._line = ""
        super().__init__(hub, "terminal", 64)

    def consume(self, events: list[Event]) -> None:
        for ev in events:
            self._show(ev)

    def _show(self, ev: Event) -> None:
        if ev.kind == "frame":
            if ev.text:
                self._line += ev.text
            if self.tty:
                bar = "#" * int(round(ev.mouth * METER_WIDTH))
                self.out.write(f"\r[{bar:<{METER_WIDTH}}] {self._line[-60:]}")
                self.out.flush()
        elif ev.kind in ("scene_line", "user_speech_started", "user_speech_ended", "rollover"):
            self._flush_line()
            if ev.kind != "scene_line":
                self.out.write(f"  ({ev.kind.replace('_', ' ')})\n")
        elif ev.kind in ("scene_end", "loop_stopped", "error", "disconnected", "connected"):
            self._flush_line()
            detail = ev.data.get("error", "") if hasattr(ev, "data") else ""
            self.out.write(f"  ({ev.kind.replace('_', ' ')}) {detail}\n")
            self.out.flush()

    def _flush_line(self) -> None:
        if self._line:
            self.out.write(("\r" if self.tty else "") + "creature:" + self._line + "\n")
            self.out.flush()
            self._line = ""

    def close(self) -> None:
        self.stop()
        for ev in self._sub.drain():  # words still queued are printed; the rest is moot now
            if ev.kind == "frame" and ev.text:
                self._line += ev.text
        self._flush_line()
