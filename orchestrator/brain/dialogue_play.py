"""One exchange played through the dialogue in simulated time, as the brain would hear it: the
user's words one by one as transcript events, then the creature's reply one word a frame
through the intent watcher, then quiet. ``creature intent --user`` and the dialogue benchmark
use it, so both judge exactly what the brain judges.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.brain.dialogue import Decision, Dialogue
from orchestrator.brain.intent_rules import IntentRules, Judgement
from orchestrator.brain.intents import IntentWatcher
from orchestrator.slow_config import IntentConfig
from track2_voice.events import UserWord
from track2_voice.frames import FRAME_SECONDS


@dataclass(frozen=True)
class Timing:
    word_s: float = 0.3  # one user word every this many seconds
    gap_s: float = 0.4  # from the user's last word to the creature's first
    transcript_lag_s: float = 0.0  # the user's words reach the brain this much later
    tail_s: float = 4.0  # quiet after the reply, for held replies and expiries


@dataclass(frozen=True)
class Decided:
    at: float  # simulated seconds since the exchange began
    decision: Decision


def play(
    user: str | None,
    creature: str | None,
    dialogue: Dialogue,
    rules: IntentRules,
    intent_cfg: IntentConfig | None = None,
    timing: Timing = Timing(),
) -> list[Decided]:
    """Every decision the dialogue makes over one exchange, with when it made it."""
    cfg = intent_cfg or IntentConfig()
    verdicts: list[tuple[Judgement, bool]] = []
    watcher = IntentWatcher(cfg, rules, on_judged=lambda j, rep: verdicts.append((j, rep)))
    timeline: list[tuple[float, int, object]] = []
    words = (user or "").split()
    for i, w in enumerate(words):
        said = i * timing.word_s
        ev = UserWord(text=w, start=said, end=said + timing.word_s * 0.8, final=True, source="play")
        timeline.append((said + timing.word_s + timing.transcript_lag_s, 0, ev))
    start = (len(words) * timing.word_s + timing.gap_s) if words else 0.0
    pieces = (creature or "").split()
    n_frames = len(pieces) + cfg.pause_frames + 2 + int(timing.tail_s / FRAME_SECONDS)
    for k in range(n_frames):
        piece = " " + pieces[k] if k < len(pieces) else None
        timeline.append((start + k * FRAME_SECONDS, 1, (k, piece)))
    timeline.sort(key=lambda x: (x[0], x[1]))
    out: list[Decided] = []
    for now, kind, item in timeline:
        if kind == 0:
            assert isinstance(item, UserWord)
            out.extend(Decided(now, d) for d in dialogue.user_word(item, now))
            continue
        k, piece = item  # type: ignore[misc]
        fired = watcher.feed(k, now, piece, 0.5)
        it = iter(fired)
        got, verdicts[:] = list(verdicts), []
        for verdict, repeated in got:
            intent = next(it) if verdict.match is not None and not repeated else None
            boundary = intent.boundary if intent else watcher.last_boundary
            for d in dialogue.creature_said(verdict, k, now, boundary, now, repeated):
                out.append(Decided(now, d))
        out.extend(Decided(now, d) for d in dialogue.tick(now))
    return out
