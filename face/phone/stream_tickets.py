"""Single-use stream tickets: what the served TwiML's ``token`` parameter carries.

Why: Twilio signs a stream's upgrade request over its URL only, and the URL is the same for
every call, so one captured ``X-Twilio-Signature`` would open any number of streams. The webhook
(signed over the call's form, so not replayable for another call) therefore hands out a fresh
random ticket with each ``<Connect><Stream>``, bound to the call's ``CallSid``; the stream must
present it as the ``token`` custom parameter of ``start``, for that call, within ``ttl_s``, once.
A replayed signature brings no ticket, a replayed ticket is spent, and the creature's own
long-lived token never travels in TwiML.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_OUTSTANDING = 64  # tickets not yet used; beyond, the oldest is forgotten


def _key(ticket: str) -> str:
    # kept by hash: a lookup's timing says nothing about the tickets themselves
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()


class StreamTickets:
    def __init__(
        self,
        ttl_s: float,
        max_outstanding: int = MAX_OUTSTANDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_outstanding, self.clock = ttl_s, max_outstanding, clock
        self._issued: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> call, expiry

    def __len__(self) -> int:
        return len(self._issued)

    def issue(self, call_sid: str) -> str:
        """A new ticket for the call ``call_sid`` ("" when the webhook named no call: then it
        opens any one stream)."""
        self._expire()
        while len(self._issued) >= self.max_outstanding:
            self._issued.popitem(last=False)
        ticket = secrets.token_urlsafe(24)
        self._issued[_key(ticket)] = (call_sid, self.clock() + self.ttl_s)
        return ticket

    def redeem(self, ticket: str | None, call_sid: str) -> bool:
        """True once for a ticket issued for ``call_sid`` and not expired; it is spent by the
        first attempt, right or wrong."""
        if not ticket:
            return False
        self._expire()
        found = self._issued.pop(_key(ticket), None)
        if found is None:
            return False
        bound, _ = found
        return not bound or secrets.compare_digest(
            bound.encode("utf-8", "surrogatepass"), call_sid.encode("utf-8", "surrogatepass")
        )

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, (_, until) in self._issued.items() if until <= now]:
            del self._issued[key]
