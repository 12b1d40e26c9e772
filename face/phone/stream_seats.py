"""Who may wait for ``start`` on the telephone bridge, and who must make room.

Why: a Media Streams socket learns its caller's credential only from its upgrade request (a
Twilio signature, the creature's token) or from the ``start`` message that follows. Until then
it holds a seat, and a stranger who keeps opening sockets must not fill the seats a signed
carrier stream needs. So the two kinds wait apart: streams whose upgrade carried a credential
have seats of their own (``max_credentialed``), and streams without one are capped in all and per
address. A newcomer is never refused for lack of room; it sheds the oldest waiting stream of its
kind (without a credential: the oldest of its own address when that address is at its cap, else
of the address holding the most). A real carrier sends ``start`` within milliseconds of its
upgrade, so it is never the oldest; a stranger who holds sockets open is.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(eq=False)
class Seat:
    """One stream waiting for ``start``; ``shed`` is set when it must give its seat up."""

    host: str
    credentialed: bool
    since: float = field(default_factory=time.monotonic)
    shed: asyncio.Event = field(default_factory=asyncio.Event)


class StreamSeats:
    """The waiting streams; runs on the server's event loop only."""

    def __init__(self, max_credentialed: int, max_unauthenticated: int, per_address: int) -> None:
        self.max_credentialed = max_credentialed
        self.max_unauthenticated = max_unauthenticated
        self.per_address = per_address
        self._seats: list[Seat] = []  # oldest first
        self.shed = 0

    def __len__(self) -> int:
        return len(self._seats)

    def waiting(self, credentialed: bool) -> int:
        return sum(1 for s in self._seats if s.credentialed == credentialed)

    def take(self, host: str, credentialed: bool) -> Seat:
        """A seat for a new stream, shedding (``Seat.shed`` set) whoever must make room."""
        if credentialed:
            mine = [s for s in self._seats if s.credentialed]
            if len(mine) >= self.max_credentialed:
                self._shed(mine[0])
        else:
            strangers = [s for s in self._seats if not s.credentialed]
            same = [s for s in strangers if s.host == host]
            if len(same) >= self.per_address:
                self._shed(same[0])
            elif len(strangers) >= self.max_unauthenticated:
                most, _ = Counter(s.host for s in strangers).most_common(1)[0]
                self._shed(next(s for s in strangers if s.host == most))
        seat = Seat(host, credentialed)
        self._seats.append(seat)
        return seat

    def release(self, seat: Seat) -> None:
        if seat in self._seats:
            self._seats.remove(seat)

    def _shed(self, seat: Seat) -> None:
        self.release(seat)
        seat.shed.set()
        self.shed += 1
