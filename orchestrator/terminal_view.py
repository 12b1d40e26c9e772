"""A terminal stand-in for the face: the creature's words as they come and a mouth meter."""

from __future__ import annotations

import sys
import threading

from track2_voice.events import EventHub

METER_WIDTH = 20


class TerminalView:
    def __init__(self, hub: EventHub, stream=None) -> None:
        self.out = stream or sys.stdout
        self.tty = self.out.isatty()
        self._sub = hub.subscribe("terminal", 64)
        self._sub.use_thread_wakeup()
        self._stop = threading.Event()
        self._line = ""
        self._thread = threading.Thread(target=self._run, name="terminal-view", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ev = self._sub.wait(0.1)
            if ev is None:
                continue
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
        self._stop.set()
        self._thread.join()
        for ev in self._sub.drain():
            if ev.kind == "frame" and ev.text:
                self._line += ev.text
        self._flush_line()
