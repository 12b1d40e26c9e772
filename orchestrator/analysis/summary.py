"""What a session record says, as plain data: spans, lifecycles, tables and the figures a lab
writes down. The HTML report draws and prints this; ``creature report --json`` writes it.

Times are seconds from the start of the record (its earliest event), so a plot, a table and a
replay's ``--from/--to`` all speak the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from orchestrator.analysis import marks
from orchestrator.analysis.marks import CallLife, IntentMark, Miss, Piece, Span
from orchestrator.analysis.record_file import Record
from orchestrator.analysis.turns import VOICE_DB, Turn, turns_of
from orchestrator.analysis.user_words import user_lines
from orchestrator.brain.events import IntentDetected, PlannerConsulted, PlannerDecision
from track2_voice.events import LoopStarted
from track2_voice.frames import FRAME_MS

__all__ = ["CallLife", "IntentMark", "Miss", "Piece", "Span", "Summary", "summarize"]


@dataclass
class Summary:
    path: str
    backend: str | None
    duration_s: float
    frames: int
    t: np.ndarray  # frame times, seconds from the start
    mouth: np.ndarray
    rms_db: np.ndarray
    model_ms: np.ndarray
    overhead_ms: np.ndarray
    misses: list[Miss]
    user_speech: list[Span]
    pieces: list[Piece]
    phrases: list[Span]
    states: list[Span]
    emotions: list[Span]
    passing_looks: list[Piece]
    intents: list[IntentMark]
    calls: list[CallLife]
    rejected: list[Piece]
    disconnects: list[Span]
    rollovers: list[Piece]
    errors: list[Piece]
    turns: list[Turn]
    dropped: dict[str, int]
    record_dropped: int
    truncated: bool
    start_t: float  # the record's own clock at time 0
    planner: dict[str, Any] = field(default_factory=dict)  # planner_figures(), when one ran
    user_said: list[Span] = field(default_factory=list)  # the user's words (the transcript)

    def transcript(self) -> list[tuple[float, str, str]]:
        """Both sides in the order they spoke: (start s, "user" | "creature", words)."""
        lines = [(u.start, "user", u.label) for u in self.user_said]
        lines += [(p.start, "creature", p.label) for p in self.phrases if p.label]
        return sorted(lines)

    def rel(self, t: float) -> float:
        return round(t - self.start_t, 6)

    # -- the figures a lab writes down ------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        lat = [x.latency_ms for x in self.turns if x.latency_ms is not None]
        total = self.model_ms + self.overhead_ms
        finals: dict[str, int] = {}
        for c in self.calls:
            key = c.final or "open"
            finals[key] = finals.get(key, 0) + 1
        return {
            "duration_s": round(self.duration_s, 3),
            "frames": self.frames,
            "deadline_misses": len(self.misses),
            "frame_budget_ms": FRAME_MS,
            "model_ms_p50": _pct(self.model_ms, 50),
            "model_ms_p99": _pct(self.model_ms, 99),
            "model_ms_max": _pct(self.model_ms, 100),
            "overhead_ms_p50": _pct(self.overhead_ms, 50),
            "overhead_ms_p99": _pct(self.overhead_ms, 99),
            "overhead_ms_max": _pct(self.overhead_ms, 100),
            "step_plus_overhead_ms_p99": _pct(total, 99),
            "turns": len(self.turns),
            "turns_answered": len(lat),
            "latency_ms_p50": _pct(np.array(lat), 50),
            "latency_ms_p90": _pct(np.array(lat), 90),
            "latency_ms_min": min(lat) if lat else None,
            "latency_ms_max": max(lat) if lat else None,
            "intents": len(self.intents),
            "tool_calls": len(self.calls),
            "tool_calls_by_final_status": finals,
            "tool_calls_rejected": len(self.rejected),
            "disconnects": len(self.disconnects),
            "disconnected_s": round(sum(s.end - s.start for s in self.disconnects), 3),
            "rollovers": len(self.rollovers),
            "user_lines": len(self.user_said),
            "errors": len(self.errors),
            "dropped": dict(self.dropped),
            "record_dropped": self.record_dropped,
            "voice_db": VOICE_DB,
            **({"planner": self.planner} if self.planner else {}),
        }

    def turn_dict(self, turn: Turn) -> dict[str, Any]:
        """A turn with its times from the start of the record."""
        d = turn.to_dict()
        for k in _TURN_TIMES:
            if d[k] is not None:
                d[k] = self.rel(d[k])
        return d

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-frame arrays, JSON-ready (``--json`` and the page's data)."""
        return {
            "record": self.path,
            "backend": self.backend,
            "figures": self.figures(),
            "turns": [self.turn_dict(t) for t in self.turns],
            "misses": [asdict(m) for m in self.misses],
            "intents": [asdict(i) for i in self.intents],
            "tool_calls": [{**asdict(c), "final": c.final} for c in self.calls],
            "disconnects": [asdict(s) for s in self.disconnects],
            "rollovers": [asdict(r) for r in self.rollovers],
            "errors": [asdict(e) for e in self.errors],
            "states": [asdict(s) for s in self.states],
            "emotions": [asdict(s) for s in self.emotions],
            "transcript": [
                {"t": t, "who": who, "text": text} for t, who, text in self.transcript()
            ],
        }


_TURN_TIMES = ("user_start_t", "vad_end_t", "speech_end_t", "reply_t")


def _pct(xs: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 3) if len(xs) else None


def planner_figures(rec: Record) -> dict[str, Any]:
    """The planner's requests by verdict, the latency of those it answered, and what the
    policy decided (docs/planner.md); empty when no planner ran."""
    asked = rec.of(PlannerConsulted)
    if not asked:
        return {}
    answered = np.array([e.latency_ms for e in asked if e.verdict in ("calls", "none")])
    verdicts: dict[str, int] = {}
    for e in asked:
        verdicts[e.verdict] = verdicts.get(e.verdict, 0) + 1
    decisions: dict[str, int] = {}
    for d in rec.of(PlannerDecision):
        decisions[d.decision] = decisions.get(d.decision, 0) + 1
    return {
        "policy": asked[-1].policy,
        "requests": len(asked),
        "by_verdict": verdicts,
        "latency_ms_p50": _pct(answered, 50),
        "latency_ms_p90": _pct(answered, 90),
        "prompt_tokens": sum(e.prompt_tokens or 0 for e in asked),
        "completion_tokens": sum(e.completion_tokens or 0 for e in asked),
        "decisions": decisions,
    }


def on_audio_clock(rec: Record) -> Record:
    """The record of an offline run (a file read as fast as the model allowed: its
    ``loop_started`` says ``realtime: false``) moved onto the audio's own clock, frame i at
    i x 80 ms: its ``t`` is processing time, so a 5.2 s WAV would plot as 1.9 s. Events
    between frames move with them; events after the last frame keep their offset from it."""
    started = rec.of(LoopStarted)
    frames = rec.frames
    if not started or started[0].realtime or len(frames) < 2:
        return rec
    wall = np.maximum.accumulate(np.array([f.t for f in frames]))
    audio = wall[0] + np.array([f.index for f in frames]) * (FRAME_MS / 1000.0)

    def moved(t: float) -> float:
        if t > wall[-1]:
            return float(audio[-1] + (t - wall[-1]))
        if t < wall[0]:
            return float(audio[0] - (wall[0] - t))
        return float(np.interp(t, wall, audio))

    events = []
    for ev in rec.events:
        ev = replace(ev, t=moved(ev.t))
        if isinstance(ev, IntentDetected):
            ev = replace(ev, intent=replace(ev.intent, t=moved(ev.intent.t)))
        events.append(ev)
    return replace(rec, events=events)


def summarize(rec: Record) -> Summary:
    """Everything the report shows of ``rec``, on the audio's clock if it was an offline run."""
    rec = on_audio_clock(rec)
    t0 = rec.start_t
    end = rec.end_t - t0

    def rel(t: float) -> float:
        return round(t - t0, 6)

    frames = rec.frames
    pieces = marks.text_pieces(rec, rel)
    return Summary(
        path=str(rec.path),
        backend=next((e.backend for e in rec.of(LoopStarted)), None),
        duration_s=end,
        frames=len(frames),
        t=np.array([f.t - t0 for f in frames]),
        mouth=np.array([f.mouth for f in frames]),
        rms_db=np.array([f.rms_db for f in frames]),
        model_ms=np.array([f.model_ms for f in frames]),
        overhead_ms=np.array([f.overhead_ms for f in frames]),
        misses=marks.deadline_misses(rec, rel),
        user_speech=marks.user_speech(rec, rel, end),
        pieces=pieces,
        phrases=marks.phrases(pieces),
        states=marks.states(rec, rel, end),
        emotions=marks.emotions(rec, rel, end),
        passing_looks=marks.passing_looks(rec, rel),
        intents=marks.intents(rec, rel),
        calls=marks.call_lives(rec, rel),
        rejected=marks.rejected(rec, rel),
        disconnects=marks.disconnects(rec, rel, end),
        rollovers=marks.rollovers(rec, rel),
        errors=marks.errors(rec, rel),
        turns=turns_of(rec.events, end_t=rec.end_t),
        dropped=marks.dropped(rec),
        record_dropped=rec.record_dropped,
        truncated=rec.truncated_last_line,
        start_t=t0,
        planner=planner_figures(rec),
        user_said=[Span(rel(u.start), rel(u.end), u.text) for u in user_lines(rec.events)],
    )
