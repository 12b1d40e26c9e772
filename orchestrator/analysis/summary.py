"""What a session record says, as plain data: spans, lifecycles, tables and the figures a lab
writes down. The HTML report draws and prints this; ``creature report --json`` writes it.

Times are seconds from the start of the record (its earliest event), so a plot, a table and a
replay's ``--from/--to`` all speak the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from orchestrator.analysis.record_file import Record
from orchestrator.analysis.turns import VOICE_DB, Turn, turns_of
from orchestrator.analysis.user_words import user_lines
from orchestrator.brain.events import (
    AffectChanged,
    IntentDetected,
    PlannerConsulted,
    PlannerDecision,
    ServiceError,
    StateChanged,
    ToolCallSent,
    ToolRejected,
    ToolStatusChanged,
)
from track2_voice.events import (
    Connected,
    Disconnected,
    FrameEvent,
    LoopStarted,
    LoopStopped,
    Rollover,
    UserSpeechEnded,
    UserSpeechStarted,
    VoiceError,
)
from track2_voice.frames import FRAME_MS

PIECE_GAP_S = 0.6  # text pieces further apart than this start a new phrase


@dataclass
class Span:
    start: float
    end: float
    label: str


@dataclass
class Piece:
    t: float
    text: str


@dataclass
class CallLife:
    id: str
    action: str
    sent: float
    robot: str | None
    statuses: list[tuple[str, float]] = field(default_factory=list)

    @property
    def final(self) -> str | None:
        return self.statuses[-1][0] if self.statuses else None


@dataclass
class IntentMark:
    t: float
    action: str
    target: str | None
    phrase: str
    lag_ms: float | None


@dataclass
class Miss:
    index: int
    t: float
    model_ms: float
    overhead_ms: float


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


def _spans(changes: list[tuple[float, str]], end: float) -> list[Span]:
    out = []
    for i, (t, label) in enumerate(changes):
        t1 = changes[i + 1][0] if i + 1 < len(changes) else end
        if t1 > t:
            out.append(Span(t, t1, label))
    return out


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
    rec = on_audio_clock(rec)
    t0 = rec.start_t
    end = rec.end_t - t0

    def rel(t: float) -> float:
        return round(t - t0, 6)

    frames = rec.frames
    backend = next((e.backend for e in rec.of(LoopStarted)), None)

    user, pieces, misses, errors = [], [], [], []
    started: float | None = None
    for ev in rec.events:
        if isinstance(ev, FrameEvent):
            if ev.text:
                pieces.append(Piece(rel(ev.t), ev.text))
            if ev.missed:
                misses.append(Miss(ev.index, rel(ev.t), ev.model_ms, ev.overhead_ms))
        elif isinstance(ev, UserSpeechStarted):
            started = rel(ev.t)
        elif isinstance(ev, UserSpeechEnded):
            stop = rel(ev.t - (ev.silence_ms or 0.0) / 1000.0)
            user.append(Span(started if started is not None else stop, stop, "user"))
            started = None
        elif isinstance(ev, (VoiceError, ServiceError)):
            errors.append(Piece(rel(ev.t), f"{ev.where}: {ev.error}"))
    if started is not None:
        user.append(Span(started, end, "user"))

    phrases: list[Span] = []
    for p in pieces:
        if phrases and p.t - phrases[-1].end <= PIECE_GAP_S:
            phrases[-1].end = p.t
            phrases[-1].label += p.text
        else:
            phrases.append(Span(p.t, p.t, p.text))
    for ph in phrases:
        ph.label = ph.label.strip()
        ph.end += FRAME_MS / 1000.0

    moves = rec.of(StateChanged)
    first_state = moves[0].src if moves else "idle"
    state_changes = [(0.0, first_state)] + [(rel(e.t), e.dst) for e in moves]
    looks = rec.of(AffectChanged)
    baseline = [(0.0, "neutral")] + [
        (rel(e.t), f"{e.emotion} ({e.mood})" if e.mood else e.emotion)
        for e in looks
        if not e.passing
    ]
    passing = [Piece(rel(e.t), f"{e.emotion} ({e.cause})") for e in looks if e.passing]

    intents = [
        IntentMark(
            rel(e.intent.t),
            e.intent.action,
            e.intent.slots.get("object") or e.intent.slots.get("destination"),
            e.intent.phrase,
            e.lag_ms,
        )
        for e in rec.of(IntentDetected)
    ]
    calls: dict[str, CallLife] = {}
    rejected = []
    for ev in rec.events:
        if isinstance(ev, ToolCallSent):
            action = str(ev.arguments.get("action"))
            calls[ev.id] = CallLife(ev.id, action, rel(ev.t), ev.robot)
        elif isinstance(ev, ToolStatusChanged):
            life = calls.get(ev.id)
            if life is None:  # a call from an earlier run, resumed from the outbox
                life = calls[ev.id] = CallLife(ev.id, str(ev.action), rel(ev.t), ev.source)
            life.statuses.append((ev.status.value, rel(ev.t)))
        elif isinstance(ev, ToolRejected):
            rejected.append(Piece(rel(ev.t), f"{ev.action}: {ev.reason}"))

    disconnects, lost = [], None
    for ev in rec.events:
        if isinstance(ev, Disconnected) and lost is None:
            lost = (rel(ev.t), ev.reason)
        elif isinstance(ev, Connected) and lost is not None:
            disconnects.append(Span(lost[0], rel(ev.t), lost[1]))
            lost = None
    if lost is not None:
        disconnects.append(Span(lost[0], end, lost[1]))
    rollovers = [Piece(rel(e.t), f"{e.reason} after {e.steps} steps") for e in rec.of(Rollover)]
    dropped: dict[str, int] = {}
    for ev in rec.of(LoopStopped):
        for k, v in ev.dropped.items():
            dropped[k] = dropped.get(k, 0) + int(v)

    return Summary(
        path=str(rec.path),
        backend=backend,
        duration_s=end,
        frames=len(frames),
        t=np.array([f.t - t0 for f in frames]),
        mouth=np.array([f.mouth for f in frames]),
        rms_db=np.array([f.rms_db for f in frames]),
        model_ms=np.array([f.model_ms for f in frames]),
        overhead_ms=np.array([f.overhead_ms for f in frames]),
        misses=misses,
        user_speech=user,
        pieces=pieces,
        phrases=phrases,
        states=_spans(state_changes, end),
        emotions=_spans(baseline, end),
        passing_looks=passing,
        intents=intents,
        calls=list(calls.values()),
        rejected=rejected,
        disconnects=disconnects,
        rollovers=rollovers,
        errors=errors,
        turns=turns_of(rec.events, end_t=rec.end_t),
        dropped=dropped,
        record_dropped=rec.record_dropped,
        truncated=rec.truncated_last_line,
        start_t=t0,
        planner=planner_figures(rec),
        user_said=[Span(rel(u.start), rel(u.end), u.text) for u in user_lines(rec.events)],
    )
