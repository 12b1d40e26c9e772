"""What happens on a telephone call, as typed events on the bus (and so in the session record).

The bridge (face/phone/telephony.py) reports through a ``CallObserver``; the runtime's
:class:`orchestrator.runtime.telephony_link.BusObserver` turns each report into one of these.
``index`` is the newest frame the link had seen, ``t`` the monotonic time of the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from track2_voice.events import DiscreteEvent


@dataclass(slots=True, kw_only=True)
class PhoneCallStarted(DiscreteEvent):
    """A caller is the creature's ears and voice; ``via``: how the stream proved who it is
    (twilio-signature, ticket, token, stream-parameter); ``parameters``: the stream's custom
    parameters, the token left out."""

    kind: ClassVar[str] = "call_started"
    call_sid: str
    stream_sid: str
    via: str
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class PhoneCallEnded(DiscreteEvent):
    """``reason``: stop (the carrier ended the stream) or disconnected; ``extra``: the call's
    counters (chunks in and out, underruns, marks sent and heard, clears, bad messages)."""

    kind: ClassVar[str] = "call_ended"
    call_sid: str
    stream_sid: str
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class PhoneCallDtmf(DiscreteEvent):
    kind: ClassVar[str] = "call_dtmf"
    call_sid: str
    digit: str


@dataclass(slots=True, kw_only=True)
class PhoneCallCleared(DiscreteEvent):
    """The caller talked over the creature: its queued voice was dropped (``dropped_ms``, here
    and in the carrier's buffer) with a ``clear``."""

    kind: ClassVar[str] = "call_cleared"
    call_sid: str
    dropped_ms: float
    marks_pending: int


@dataclass(slots=True, kw_only=True)
class PhoneCallRefused(DiscreteEvent):
    """A webhook request or a stream without a valid signature or token (or a second call)."""

    kind: ClassVar[str] = "call_refused"
    where: str
    peer: str
    reason: str
