"""What the telephone bridge reports (the runtime turns these into events on the bus)."""

from __future__ import annotations

from typing import Any, Protocol

from face.phone.twilio_protocol import StartMsg


class CallObserver(Protocol):
    """What the bridge reports (the runtime turns these into events on the bus)."""

    def call_started(self, start: StartMsg, via: str) -> None: ...

    def call_ended(self, start: StartMsg, reason: str, stats: dict[str, Any]) -> None: ...

    def dtmf(self, start: StartMsg, digit: str) -> None: ...

    def cleared(self, start: StartMsg, dropped_ms: float, marks_pending: int) -> None: ...

    def refused(self, where: str, peer: str, reason: str) -> None: ...


class Quiet:
    """Reports to nobody (a bridge without an observer)."""

    def call_started(self, start: StartMsg, via: str) -> None:
        pass

    def call_ended(self, start: StartMsg, reason: str, stats: dict[str, Any]) -> None:
        pass

    def dtmf(self, start: StartMsg, digit: str) -> None:
        pass

    def cleared(self, start: StartMsg, dropped_ms: float, marks_pending: int) -> None:
        pass

    def refused(self, where: str, peer: str, reason: str) -> None:
        pass
