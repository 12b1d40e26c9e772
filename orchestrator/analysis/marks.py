"""What a session record holds, one kind of mark at a time: spans (user speech, phrases,
states, looks, lost links), points (text pieces, misses, errors, rollovers) and the life of
each tool call. ``summarize`` puts them together into a ``Summary``.

Every reader takes ``rel``, the record's clock turned into seconds from its start, so that
all marks speak the numbers a plot, a table and ``--from/--to`` use; ``end`` is the record's
last second, where a span still open at the end closes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.analysis.record_file import Record
from orchestrator.brain.events import (
    AffectChanged,
    IntentDetected,
    ServiceError,
    StateChanged,
    ToolCallSent,
    ToolRejected,
    ToolStatusChanged,
)
from track2_voice import events as voice
from track2_voice.frames import FRAME_MS

PIECE_GAP_S = 0.6  # text pieces further apart than this start a new phrase
Rel = Callable[[float], float]  # the record's clock -> seconds from its start


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


def spans(changes: list[tuple[float, str]], end: float) -> list[Span]:
    """Each change lasts until the next one (the last until ``end``); empty spans are left out."""
    out = []
    for i, (t, label) in enumerate(changes):
        t1 = changes[i + 1][0] if i + 1 < len(changes) else end
        if t1 > t:
            out.append(Span(t, t1, label))
    return out


# -- the fast loop's frames ------------------------------------------------------------------


def text_pieces(rec: Record, rel: Rel) -> list[Piece]:
    return [Piece(rel(f.t), f.text) for f in rec.frames if f.text]


def deadline_misses(rec: Record, rel: Rel) -> list[Miss]:
    return [Miss(f.index, rel(f.t), f.model_ms, f.overhead_ms) for f in rec.frames if f.missed]


def phrases(pieces: list[Piece]) -> list[Span]:
    """Text pieces joined into phrases: a gap over ``PIECE_GAP_S`` starts a new one; each
    phrase ends one frame after its last piece."""
    out: list[Span] = []
    for p in pieces:
        if out and p.t - out[-1].end <= PIECE_GAP_S:
            out[-1].end = p.t
            out[-1].label += p.text
        else:
            out.append(Span(p.t, p.t, p.text))
    for ph in out:
        ph.label = ph.label.strip()
        ph.end += FRAME_MS / 1000.0
    return out


# -- the voice side's happenings ---------------------------------------------------------------


def user_speech(rec: Record, rel: Rel, end: float) -> list[Span]:
    """From the detector's start to where the voiced audio ended (its decision came
    ``silence_ms`` later); an end with no start is a point, a start with no end runs on."""
    out = []
    started: float | None = None
    for ev in rec.of(voice.UserSpeechStarted, voice.UserSpeechEnded):
        if isinstance(ev, voice.UserSpeechStarted):
            started = rel(ev.t)
            continue
        stop = rel(ev.t - (ev.silence_ms or 0.0) / 1000.0)
        out.append(Span(started if started is not None else stop, stop, "user"))
        started = None
    if started is not None:
        out.append(Span(started, end, "user"))
    return out


def errors(rec: Record, rel: Rel) -> list[Piece]:
    """The voice side's and the services' errors, where and what."""
    return [
        Piece(rel(ev.t), f"{ev.where}: {ev.error}") for ev in rec.of(voice.VoiceError, ServiceError)
    ]


def disconnects(rec: Record, rel: Rel, end: float) -> list[Span]:
    """From a remote backend's first ``disconnected`` to the next ``connected`` (or ``end``),
    labelled with the reason it was lost."""
    out, lost = [], None
    for ev in rec.of(voice.Disconnected, voice.Connected):
        if isinstance(ev, voice.Disconnected) and lost is None:
            lost = (rel(ev.t), ev.reason)
        elif isinstance(ev, voice.Connected) and lost is not None:
            out.append(Span(lost[0], rel(ev.t), lost[1]))
            lost = None
    if lost is not None:
        out.append(Span(lost[0], end, lost[1]))
    return out


def rollovers(rec: Record, rel: Rel) -> list[Piece]:
    return [Piece(rel(e.t), f"{e.reason} after {e.steps} steps") for e in rec.of(voice.Rollover)]


def dropped(rec: Record) -> dict[str, int]:
    """Each consumer's drops, summed over the sessions of the record."""
    out: dict[str, int] = {}
    for ev in rec.of(voice.LoopStopped):
        for k, v in ev.dropped.items():
            out[k] = out.get(k, 0) + int(v)
    return out


# -- the brain's decisions ------------------------------------------------------------------------


def states(rec: Record, rel: Rel, end: float) -> list[Span]:
    """The state machine's states; before the first change, the state it left."""
    moves = rec.of(StateChanged)
    first_state = moves[0].src if moves else "idle"
    return spans([(0.0, first_state)] + [(rel(e.t), e.dst) for e in moves], end)


def emotions(rec: Record, rel: Rel, end: float) -> list[Span]:
    """The baseline look (a passing look is a point, see ``passing_looks``), with its mood."""
    baseline = [(0.0, "neutral")] + [
        (rel(e.t), f"{e.emotion} ({e.mood})" if e.mood else e.emotion)
        for e in rec.of(AffectChanged)
        if not e.passing
    ]
    return spans(baseline, end)


def passing_looks(rec: Record, rel: Rel) -> list[Piece]:
    return [Piece(rel(e.t), f"{e.emotion} ({e.cause})") for e in rec.of(AffectChanged) if e.passing]


def intents(rec: Record, rel: Rel) -> list[IntentMark]:
    return [
        IntentMark(
            rel(e.intent.t),
            e.intent.action,
            e.intent.slots.get("object") or e.intent.slots.get("destination"),
            e.intent.phrase,
            e.lag_ms,
        )
        for e in rec.of(IntentDetected)
    ]


def call_lives(rec: Record, rel: Rel) -> list[CallLife]:
    """Each tool call from its sending through every status reported on it; a status on a
    call the record never sent (resumed from the outbox of an earlier run) starts its life."""
    calls: dict[str, CallLife] = {}
    for ev in rec.of(ToolCallSent, ToolStatusChanged):
        if isinstance(ev, ToolCallSent):
            action = str(ev.arguments.get("action"))
            calls[ev.id] = CallLife(ev.id, action, rel(ev.t), ev.robot)
            continue
        life = calls.get(ev.id)
        if life is None:
            life = calls[ev.id] = CallLife(ev.id, str(ev.action), rel(ev.t), ev.source)
        life.statuses.append((ev.status.value, rel(ev.t)))
    return list(calls.values())


def rejected(rec: Record, rel: Rel) -> list[Piece]:
    return [Piece(rel(e.t), f"{e.action}: {e.reason}") for e in rec.of(ToolRejected)]
