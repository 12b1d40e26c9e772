"""The brain's events about the conversation rather than the body (and so lines in the session
record, docs/slow_loop.md): an interpreter's passages, the planner's requests and decisions,
what the dialogue heard the user ask and how it bound the creature's reply. Re-exported by
:mod:`orchestrator.brain.events`, the one place consumers import events from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from track2_voice.events import DiscreteEvent


@dataclass(slots=True, kw_only=True)
class TranslationStarted(DiscreteEvent):
    """Interpreter mode: the first translated audio of a passage. ``lag_ms``: after the
    visitor's speech was detected (``source_t``; None when none was heard)."""

    kind: ClassVar[str] = "translation_started"
    passage: int
    source_t: float | None
    lag_ms: float | None


@dataclass(slots=True, kw_only=True)
class PassageTranslated(DiscreteEvent):
    """Interpreter mode: a passage ended (``ended_by``: ``eos``, the model's end of passage;
    ``quiet``, a gap with nobody speaking; ``session``, the session stopped). Its times are
    the frames' clock; ``lag_ms`` is its ``translation_started`` line's (None when the voice
    began before any source speech was detected)."""

    kind: ClassVar[str] = "translation"
    passage: int
    text: str
    source_start_t: float | None
    source_end_t: float | None
    first_audio_t: float | None
    first_text_t: float | None
    end_t: float
    lag_ms: float | None
    ended_by: str
    cut_chars: int = 0  # a passage keeps only its newest characters: how many it cut


@dataclass(slots=True, kw_only=True)
class PlannerConsulted(DiscreteEvent):
    """One planner request and what it came to (docs/planner.md). ``verdict``: calls, none,
    malformed, error, timeout or superseded; ``proposals`` passed the checks, ``refused`` did
    not (each with why); tokens as the endpoint counted them (None when it did not say)."""

    kind: ClassVar[str] = "planner"
    request: int
    trigger: str
    policy: str
    verdict: str
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    proposals: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True, kw_only=True)
class PlannerDecision(DiscreteEvent):
    """What the policy did with a proposal or a held rules call: ``added`` (sent as a call),
    ``duplicate`` (the rules had made it), ``confirmed`` / ``vetoed`` (confirm), ``sent_at_bound``
    / ``dropped_at_bound`` (confirm, no answer in time), ``ignored`` (planner policy: a rules
    call), ``not_asked`` (confirm: a proposal nobody was waiting for)."""

    kind: ClassVar[str] = "planner_decision"
    decision: str
    policy: str
    action: str
    object: str | None = None
    request: int | None = None
    intent: str | None = None
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class UserRequestHeard(DiscreteEvent):
    """A request in the user's words (orchestrator/brain/dialogue.py), held until the creature
    accepts it: never a call by itself. ``read_as``: the user's words as the creature's
    grammar read them; ``calls``: the actions and slots asked for, in order."""

    kind: ClassVar[str] = "user_request"
    text: str
    read_as: str
    calls: list[dict[str, Any]]


@dataclass(slots=True, kw_only=True)
class UserStopHeard(DiscreteEvent):
    """The user's stop ("stop", "wait, don't"): every open call was cancelled at once.
    ``final`` is False when a partial word sufficed; ``word_t`` is the word event's time."""

    kind: ClassVar[str] = "user_stop"
    words: str
    final: bool
    word_t: float = 0.0


@dataclass(slots=True, kw_only=True)
class DialogueBound(DiscreteEvent):
    """Calls the dialogue made: ``binding`` says how (the creature's own commitment, a request
    it accepted, a pronoun resolved to the request or to the last object named); ``calls`` are
    the intents' ids in order (the first is sent now, each next when the one before
    succeeds); ``waited_s``: how long the reply waited for the user's words."""

    kind: ClassVar[str] = "dialogue"
    binding: str
    reply: str
    creature: str
    user: str | None = None
    calls: list[str] = field(default_factory=list)
    waited_s: float = 0.0


@dataclass(slots=True, kw_only=True)
class DialogueUnsent(DiscreteEvent):
    """No call, and why: a pronoun that refers to nothing, a refused or deferred request, a
    request nobody accepted, a request the user took back."""

    kind: ClassVar[str] = "dialogue_unsent"
    reason: str
    creature: str | None = None
    user: str | None = None
    action: str | None = None


@dataclass(slots=True, kw_only=True)
class CallChainDropped(DiscreteEvent):
    """The calls after ``after`` were dropped: it ended ``status``, not succeeded."""

    kind: ClassVar[str] = "tool_chain_dropped"
    after: str
    status: str
    dropped: list[str] = field(default_factory=list)
