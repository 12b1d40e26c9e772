"""One clock for every voice system under test: the same utterances, fed the same way, timed the
same way, whatever answers them (the creature's fast loop, a Pipecat cascade, a remote server).

The harness plays each utterance at real time in 20 ms chunks into one continuous stream (a
microphone never stops: silence before, between and after). It knows where each utterance's
speech ends from the file alone (the last 10 ms window louder than ``speech_db``), so the
reference does not depend on the system under test. A turn's latency is measured from the
moment the *last voiced chunk* was handed to the system to the first audible sample of the
reply: the first 10 ms window louder than ``audible_db`` in the system's output, placed at its
chunk's arrival time plus its offset inside the chunk (when a sound card would play it).

Systems run in any process (the cascade runs in its own environment): this module needs only
numpy, soundfile and soxr, and every time is ``time.monotonic()`` of the process that runs the
harness, the same clock the system's own stage timestamps use.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from track2_voice.devtools.utterances import (
    AUDIO_EXTS,
    CHUNK_S,
    WINDOW_S,
    Utterance,
    find_utterances,
    level_db,
    load_utterance,
    speech_end_s,
)

__all__ = [
    "AUDIO_EXTS",
    "CHUNK_S",
    "ClockSettings",
    "OutputWatch",
    "TurnDetail",
    "TurnSystem",
    "TurnTiming",
    "Utterance",
    "WINDOW_S",
    "find_utterances",
    "level_db",
    "load_utterance",
    "percentile",
    "side_by_side",
    "speech_end_s",
    "summarize",
    "time_turns",
]


@dataclass(frozen=True)
class ClockSettings:
    speech_db: float = -40.0  # input windows louder than this are speech
    audible_db: float = -45.0  # output windows louder than this are the reply
    lead_in_s: float = 0.5  # silence before each utterance
    max_wait_s: float = 10.0  # no audible reply this long after the end of speech: none
    listen_s: float = 1.0  # hear this much of a reply, then ask the system to stop it
    settle_s: float = 5.0  # then wait up to this for the system to go quiet
    warm_up: bool = True  # play the first utterance once, untimed: first calls pay for set-up


class OutputWatch:
    """Finds the first audible output sample after a moment. ``heard`` may be called from any
    thread (the creature's fast loop has its own); it only compares levels and stores a time."""

    def __init__(self, audible_db: float) -> None:
        self.audible_db = audible_db
        self._lock = threading.Lock()
        self._after: float | None = None
        self.first_audio_t: float | None = None

    def arm(self, after: float) -> None:
        with self._lock:
            self._after, self.first_audio_t = after, None

    def disarm(self) -> None:
        with self._lock:
            self._after = None

    def heard(self, pcm: np.ndarray, rate: int, t: float) -> None:
        """``pcm``: float32 output samples that became playable at ``t`` (time.monotonic())."""
        with self._lock:
            if self._after is None or self.first_audio_t is not None or t < self._after:
                return
        win = max(1, int(round(WINDOW_S * rate)))
        for i in range(0, pcm.size - win + 1, win):
            if level_db(pcm[i : i + win]) > self.audible_db:
                with self._lock:
                    if self._after is not None and self.first_audio_t is None:
                        self.first_audio_t = t + i / rate
                return


class TurnSystem(Protocol):
    """What the harness needs from a system under test."""

    name: str
    rate: int  # input sample rate it takes

    def listen(self, heard: Callable[[np.ndarray, int, float], None]) -> None:
        """Call ``heard(pcm, rate, t)`` for every chunk of output audio, as it becomes playable."""

    async def feed(self, chunk: np.ndarray) -> None:
        """One 20 ms chunk of float32 input at ``rate``; must return at once."""

    def begin_turn(self, utt: Utterance, t_end: float) -> None:
        """The harness has just handed over the utterance's last voiced chunk at ``t_end``."""

    async def hush(self) -> None:
        """Stop the reply in progress (as a user's "stop" would), so turns stay independent:
        the harness has what it measures once the reply is audible."""

    def quiet(self) -> bool:
        """True when the system is not answering (so the next utterance may start)."""

    def end_turn(self, first_audio_t: float | None) -> TurnDetail:
        """What the system knows about the turn that ended (stages, transcript, notes), given
        when the harness heard the reply begin (None: it did not)."""


@dataclass
class TurnDetail:
    stages_ms: dict[str, float] = field(default_factory=dict)  # additive, in order
    metrics_ms: dict[str, float] = field(default_factory=dict)  # the system's own figures
    transcript: str = ""
    reply: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class TurnTiming:
    name: str
    speech_end_s: float  # in the file
    latency_ms: float | None  # last voiced chunk -> first audible reply sample; None: no reply
    detail: TurnDetail = field(default_factory=TurnDetail)


class _Pacer:
    """Hands chunks over at real time on one continuous schedule."""

    def __init__(self, system: TurnSystem) -> None:
        self.system = system
        self.silence = np.zeros(int(round(CHUNK_S * system.rate)), np.float32)
        self._t0 = time.monotonic()
        self._k = 0

    async def feed(self, chunk: np.ndarray | None = None) -> float:
        """Wait until the chunk is complete (spoken), hand it over, return that moment."""
        due = self._t0 + (self._k + 1) * CHUNK_S
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = time.monotonic()
        await self.system.feed(self.silence if chunk is None else chunk)
        self._k += 1
        return t


async def time_turns(
    system: TurnSystem,
    utterances: list[Utterance],
    settings: ClockSettings,
    on_turn: Callable[[TurnTiming], None] | None = None,
) -> list[TurnTiming]:
    """Play every utterance to ``system`` and time its reply: the one harness for all systems."""
    watch = OutputWatch(settings.audible_db)
    system.listen(watch.heard)
    pacer = _Pacer(system)
    lead = int(round(settings.lead_in_s / CHUNK_S))

    async def one_turn(utt: Utterance) -> TurnTiming:
        for _ in range(lead):
            await pacer.feed()
        t_end = 0.0
        for k, chunk in enumerate(utt.chunks()):
            t = await pacer.feed(chunk)
            if k == utt.last_voiced_chunk:
                t_end = t
                watch.arm(t_end)
                system.begin_turn(utt, t_end)
        while watch.first_audio_t is None and time.monotonic() - t_end < settings.max_wait_s:
            await pacer.feed()
        first = watch.first_audio_t
        watch.disarm()
        listen_until = time.monotonic() + settings.listen_s
        while first is not None and time.monotonic() < listen_until:
            await pacer.feed()
        await system.hush()
        settle_until = time.monotonic() + settings.settle_s
        while not system.quiet() and time.monotonic() < settle_until:
            await pacer.feed()
        latency = None if first is None else round((first - t_end) * 1000.0, 1)
        timing = TurnTiming(utt.name, round(utt.speech_end_s, 3), latency, system.end_turn(first))
        if not system.quiet():
            timing.detail.notes.append(f"still answering {settings.settle_s:g} s after the reply")
        return timing

    if settings.warm_up and utterances:
        await one_turn(utterances[0])
    results: list[TurnTiming] = []
    for utt in utterances:
        results.append(await one_turn(utt))
        if on_turn is not None:
            on_turn(results[-1])
    return results


# -- summaries and the side-by-side table ------------------------------------------------------


def percentile(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 1) if xs else None


def summarize(turns: list[TurnTiming]) -> dict:
    """p50/p90 of the end-to-end latency and of every stage and metric, in first-seen order."""
    e2e = [t.latency_ms for t in turns if t.latency_ms is not None]
    out: dict = {
        "turns": len(turns),
        "answered": len(e2e),
        "e2e_ms": {"p50": percentile(e2e, 50), "p90": percentile(e2e, 90)},
    }
    for key in ("stages_ms", "metrics_ms"):
        names: dict[str, list[float]] = {}
        for t in turns:
            for name, v in getattr(t.detail, key).items():
                names.setdefault(name, []).append(v)
        out[key] = {
            n: {"p50": percentile(v, 50), "p90": percentile(v, 90)} for n, v in names.items()
        }
    return out


def _cell(entry: dict | None) -> str:
    if not entry or entry.get("p50") is None:
        return f"{'-':>17s}"
    return f"{entry['p50']:8.0f} /{entry['p90']:7.0f}"


def side_by_side(columns: dict[str, dict], load: tuple[float, float, float]) -> str:
    """One table: rows are stages (the cascade's, then each system's own metrics) and the
    end-to-end latency; columns are the systems; cells are p50 / p90 in ms."""
    names = list(columns)
    rows: list[tuple[str, dict[str, dict | None]]] = []
    for section in ("stages_ms", "metrics_ms"):
        seen: list[str] = []
        for s in columns.values():
            seen += [n for n in s.get(section, {}) if n not in seen]
        if seen:
            rows.append(
                ("stages (sum = e2e)" if section == "stages_ms" else "reported by the system", {})
            )
        rows += [(f"  {n}", {c: columns[c].get(section, {}).get(n) for c in names}) for n in seen]
    rows.append(("end to end", {c: columns[c]["e2e_ms"] for c in names}))
    head = f"{'p50 / p90 ms':26s}" + "".join(f"{c:>18s}" for c in names)
    lines = [head, "-" * len(head)]
    for label, cells in rows:
        lines.append(f"{label:26s}" + "".join(f" {_cell(cells.get(c))}" for c in names))
    lines.append(
        "answered".ljust(26)
        + "".join(f"{columns[c]['answered']:>11d} of {columns[c]['turns']:<3d}" for c in names)
    )
    lines.append(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return "\n".join(lines)
