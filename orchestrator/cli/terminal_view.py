"""A terminal stand-in for the face: the creature's words as they come and a mouth meter, and
the user's words (``user_word`` events, final ones) as a ``user:`` line.

It is a task on the creature's I/O loop, fed by a small drop-oldest bus subscription.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from orchestrator.bus import Bus
from orchestrator.cli import logs
from orchestrator.runtime.io_loop import IoLoop
from track2_voice.events import (
    Connected,
    Disconnected,
    Event,
    FrameEvent,
    LoopStopped,
    Rollover,
    SceneEnd,
    SceneLine,
    UserSpeechEnded,
    UserSpeechStarted,
    UserWord,
    VoiceError,
)

METER_WIDTH = 20
QUEUE_SIZE = 64
MARKED = (UserSpeechStarted, UserSpeechEnded, Rollover)  # shown as "(user speech started)"
NOTED = (SceneEnd, LoopStopped, VoiceError, Disconnected, Connected)
SHOWN = (FrameEvent, SceneLine, UserWord, *MARKED, *NOTED)


class TerminalView:
    def __init__(self, bus: Bus, io: IoLoop, stream=None) -> None:
        self.out = stream or sys.stdout
        self.tty = self.out.isatty()
        self._line = ""
        self._user: list[str] = []  # the user's final words since their line was printed
        self._meter_shown = False  # a meter line without its newline is on the terminal
        self._lock = threading.Lock()  # log records come from any thread
        self.bus, self.io = bus, io
        if self.tty:
            logs.set_live_line(self.clear_meter)
        self._sub = None
        self._task: asyncio.Task | None = None
        io.run(self._attach())

    async def _attach(self) -> None:
        self._sub = self.bus.subscribe_async("terminal", QUEUE_SIZE, SHOWN)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for ev in await self._sub.get_batch():
                self._show(ev)

    def _show(self, ev: Event) -> None:
        if isinstance(ev, UserWord):
            if ev.final:
                self._user.append(ev.text.strip())
            return
        if isinstance(ev, FrameEvent):
            if ev.text:
                self._flush_user()
                self._line += ev.text
            if self.tty:
                bar = "#" * int(round(ev.mouth * METER_WIDTH))
                with self._lock:
                    self.out.write(f"\r[{bar:<{METER_WIDTH}}] {self._line[-60:]}")
                    self.out.flush()
                    self._meter_shown = True
        elif isinstance(ev, (SceneLine, *MARKED)):
            self._flush_line()
            self._flush_user()
            if not isinstance(ev, SceneLine):
                self.out.write(f"  ({ev.kind.replace('_', ' ')})\n")
        elif isinstance(ev, NOTED):
            self._flush_line()
            detail = ev.error if isinstance(ev, VoiceError) else ""
            self.out.write(f"  ({ev.kind.replace('_', ' ')}) {detail}\n")
            self.out.flush()

    def _flush_user(self) -> None:
        if self._user:
            self._flush_line()
            self.out.write(("\r" if self.tty else "") + "user: " + " ".join(self._user) + "\n")
            self.out.flush()
            self._user = []

    def _flush_line(self) -> None:
        if self._line:
            with self._lock:
                self.out.write(("\r" if self.tty else "") + "creature:" + self._line + "\n")
                self.out.flush()
                self._meter_shown = False
            self._line = ""
        else:
            self.clear_meter()  # a note is printed on a line of its own, not after the meter

    def clear_meter(self) -> None:
        """Erase the meter line (called before a log record is written); the next frame
        draws it again below the record."""
        with self._lock:
            if self._meter_shown:
                self.out.write("\r\x1b[K")
                self.out.flush()
                self._meter_shown = False

    async def _detach(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.bus.unsubscribe(self._sub)
        for ev in self._sub.drain():  # words still queued are printed; the rest is moot now
            if isinstance(ev, FrameEvent) and ev.text:
                self._line += ev.text
        self._flush_line()
        self._flush_user()

    def close(self) -> None:
        if self.tty:
            logs.set_live_line(None)
        if self.io.running:
            self.io.run(self._detach())
