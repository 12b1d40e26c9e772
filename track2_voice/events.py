"""The events the voice side produces, as typed dataclasses, and the sink it publishes them to.

The fast loop only knows :class:`EventSink` (``publish(event)`` that never blocks, ``drops()``):
the bounded, drop-oldest bus that fans events out to consumers lives outside this package
(``orchestrator.bus``), so the voice package imports nothing of the slow side.

Each event's ``kind`` names it in the JSONL session record; ``to_dict()`` is its record line
(the documented format). Consumers dispatch on the type (``isinstance`` / ``match``), never on
the string.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np

from track2_voice.common.errors import CreatureError

T_DIGITS = 6  # record time stamps to the microsecond


class DuplicateEventKind(CreatureError, TypeError):
    """Two event classes claim one ``kind``: their record lines could not be told apart."""


# every event class by its ``kind``: the one table the record reader, replay and the docs use.
# A class registers itself when it is defined (``Event.__init_subclass__``).
EVENT_KINDS: dict[str, type[Event]] = {}


class Event:
    """Anything published on the bus: voice events here, brain events in the orchestrator.

    A subclass that sets ``kind`` in its own body registers itself in :data:`EVENT_KINDS`;
    a second class with the same kind is a :class:`DuplicateEventKind` at import. A base class
    that is not an event of its own says ``abstract_event = True``."""

    __slots__ = ()
    kind: ClassVar[str]
    abstract_event: ClassVar[bool] = True
    index: int
    t: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if not isinstance(kind, str) or cls.__dict__.get("abstract_event", False):
            return
        known = EVENT_KINDS.get(kind)
        # @dataclass(slots=True) builds a second class of the same name: it replaces the first
        same = known is not None and (known.__module__, known.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        )
        if known is not None and not same:
            raise DuplicateEventKind(
                f"event kind {kind!r}: {cls.__module__}.{cls.__qualname__} and "
                f"{known.__module__}.{known.__qualname__}"
            )
        EVENT_KINDS[kind] = cls

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        """The event again from its record line (``to_dict``'s inverse, less what the record
        leaves out, such as a frame's audio). Raises TypeError/ValueError on a bad line."""
        raise NotImplementedError


class EventSink(Protocol):
    """Where the fast loop publishes. ``publish`` must never block; ``drops`` counts the
    events each consumer lost (for the ``loop_stopped`` record line)."""

    def publish(self, event: Event) -> None: ...

    def drops(self) -> dict[str, int]: ...


class DiscardSink:
    """A sink for a loop nobody listens to (benchmarks, tests of the loop alone)."""

    def publish(self, event: Event) -> None:
        pass

    def drops(self) -> dict[str, int]:
        return {}


@dataclass(slots=True, kw_only=True)
class FrameEvent(Event):
    """Everything the loop knows about one frame. ``pcm`` (the creature's audio) is not logged."""

    kind: ClassVar[str] = "frame"
    index: int
    t: float
    mouth: float
    rms_db: float
    text: str | None
    # the loop measures these for every frame; a frame made elsewhere (a test, a benchmark)
    # leaves them at "no time taken, not late, nobody heard"
    model_ms: float = 0.0
    overhead_ms: float = 0.0
    missed: bool = False
    user_speaking: bool = False
    pcm: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "frame",
            "index": self.index,
            "t": round(self.t, T_DIGITS),
            "mouth": round(self.mouth, 4),
            "rms_db": round(self.rms_db, 2),
            "model_ms": round(self.model_ms, 3),
            "overhead_ms": round(self.overhead_ms, 3),
            "missed": self.missed,
            "user_speaking": self.user_speaking,
        }
        if self.text:
            d["text"] = self.text
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameEvent:
        return cls(
            index=int(d["index"]),
            t=float(d["t"]),
            mouth=float(d["mouth"]),
            rms_db=float(d["rms_db"]),
            text=d.get("text"),
            model_ms=float(d["model_ms"]),
            overhead_ms=float(d["overhead_ms"]),
            missed=bool(d["missed"]),
            user_speaking=bool(d.get("user_speaking", False)),
        )


@dataclass(slots=True, kw_only=True)
class DiscreteEvent(Event):
    """A discrete event. ``index``/``t`` default to "not placed yet": the loop stamps events a
    backend returns with the frame they happened in. Its record line is ``kind``, ``index``,
    ``t`` and the subclass's fields (a field named ``extra`` is merged in flat)."""

    kind: ClassVar[str] = "event"
    abstract_event: ClassVar[bool] = True
    index: int = -1
    t: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "index": self.index, "t": round(self.t, T_DIGITS)}
        for f in fields(self):
            if f.name in ("index", "t"):
                continue
            value = getattr(self, f.name)
            if f.name == "extra":
                d.update(value)
            else:
                d[f.name] = value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscreteEvent:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names and k != "extra"}
        if "extra" in names:  # what the line holds beyond the named fields
            kw["extra"] = {k: v for k, v in d.items() if k not in names and k != "kind"}
        return cls(**kw)


@dataclass(slots=True, kw_only=True)
class LoopStarted(DiscreteEvent):
    """``realtime`` false: the source was read as fast as the model allowed (a file), so
    ``t`` is processing time and the audio's own time is ``index`` x 80 ms."""

    kind: ClassVar[str] = "loop_started"
    backend: str
    realtime: bool = True


@dataclass(slots=True, kw_only=True)
class LoopStopped(DiscreteEvent):
    """The loop's summary (frames, misses, step and overhead percentiles) and each consumer's
    drops."""

    kind: ClassVar[str] = "loop_stopped"
    extra: dict[str, Any] = field(default_factory=dict)  # LoopStats.summary()
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class VoiceError(DiscreteEvent):
    """A frame or a link failed; the session goes on."""

    kind: ClassVar[str] = "error"
    where: str
    error: str


@dataclass(slots=True, kw_only=True)
class UserSpeechStarted(DiscreteEvent):
    kind: ClassVar[str] = "user_speech_started"
    probability: float


@dataclass(slots=True, kw_only=True)
class UserSpeechEnded(DiscreteEvent):
    """The detector's decision that the user stopped; their voiced audio ended ``silence_ms``
    before ``t`` (the silence it waited for, ``voice.vad.end_ms``, and the rest of the frame).
    None in records made before it was recorded."""

    kind: ClassVar[str] = "user_speech_ended"
    probability: float
    silence_ms: float | None = None


@dataclass(slots=True, kw_only=True)
class Connected(DiscreteEvent):
    """The remote backend holds a session with a Moshi-protocol server (``extra``: what the
    handshake said). ``url`` is the configured one with credentials redacted (``?token=***``)."""

    kind: ClassVar[str] = "connected"
    url: str
    session: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Disconnected(DiscreteEvent):
    kind: ClassVar[str] = "disconnected"
    url: str
    reason: str
    retry_s: float


@dataclass(slots=True, kw_only=True)
class Rollover(DiscreteEvent):
    """The model's state was reset to stay inside its step budget; the audio has no gap."""

    kind: ClassVar[str] = "rollover"
    reason: str
    steps: int
    total_steps: int
    session: int


@dataclass(slots=True, kw_only=True)
class PassageEnded(DiscreteEvent):
    """A translation model (Hibiki) closed a translated passage: its end-of-sequence token,
    in the frame where it was generated (in-process) or played (remote)."""

    kind: ClassVar[str] = "passage_end"


@dataclass(slots=True, kw_only=True)
class SceneLine(DiscreteEvent):
    """The replay backend started a scripted line (``start``: what let it start)."""

    kind: ClassVar[str] = "scene_line"
    line: int
    text: str
    start: str


@dataclass(slots=True, kw_only=True)
class SceneEnd(DiscreteEvent):
    kind: ClassVar[str] = "scene_end"
    scene: str


@dataclass(slots=True, kw_only=True)
class UserWord(DiscreteEvent):
    """One word of the user's side, from the transcript worker (off the fast loop).

    ``start``/``end`` are on the mic clock (seconds of user audio since the session began), so
    they line up with the frames and with the creature's own text. ``final`` False is a
    hypothesis that a later event may revise (a streaming recogniser's partial); True is
    settled. ``source`` names what heard it (``pocketsphinx``, ``kyutai``, ``kyutai-remote``,
    ``scene`` for a scripted line)."""

    kind: ClassVar[str] = "user_word"
    text: str
    start: float
    end: float
    final: bool = True
    source: str = ""


USER_SPEECH = {"started": UserSpeechStarted, "ended": UserSpeechEnded}
