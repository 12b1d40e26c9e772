"""Live metrics in the Prometheus text format, served at ``/metrics`` on the face server.

Why a bus consumer: the fast loop must not do any bookkeeping for an observer, so every
figure is derived from the typed events it already publishes (and the brain's), by a task on
the I/O loop that reads its own bounded subscription. If that task falls behind, the bus drops
its oldest events and counts them (``creature_consumer_dropped_events_total{consumer=
"metrics"}``); the loop never waits. What is not an event is read when Prometheus scrapes: the
face server's and the phone's connections, each consumer's drops. Every metric is listed in
docs/metrics.md.

The endpoint needs the access token (the one in the face URL), as ``Authorization: Bearer``
or ``?token=``; ``metrics.enabled: false`` removes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from orchestrator.bus import Bus, Subscription
from orchestrator.runtime.creature_metrics import INPUT_TYPES, CreatureMetrics
from orchestrator.runtime.io_loop import IoLoop
from track2_voice.common.web import bearer, token_ok

if TYPE_CHECKING:
    from orchestrator.config import CreatureConfig

__all__ = ["CreatureMetrics", "MetricsService", "metrics_route", "served_metrics"]
log = logging.getLogger(__name__)

PATH = "/metrics"
CONSUMER = "metrics"


async def metrics_feed(sub: Subscription, metrics: CreatureMetrics) -> None:
    """The consumer task on the I/O loop. A failing event is logged and skipped."""
    while True:
        for ev in await sub.get_batch():
            try:
                metrics.observe(ev)
            except Exception:
                log.exception("metrics: event %s failed", ev.kind)


def metrics_route(metrics: CreatureMetrics, token: str) -> Route:
    """``GET /metrics`` with the access token (``Authorization: Bearer`` or ``?token=``)."""

    async def endpoint(request: Request) -> Response:
        given = bearer(request.headers) or request.query_params.get("token")
        if not token_ok(given, token):
            return PlainTextResponse(
                "the creature's metrics need its access token "
                "(Authorization: Bearer TOKEN, or ?token=TOKEN)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="creature"'},
            )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route(PATH, endpoint, methods=["GET"])


class MetricsService:
    """The metrics of one session and their consumer task on the I/O loop, from before the
    brain and the robots start to the end (the face server serves them while it runs)."""

    def __init__(
        self, bus: Bus, queue_size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bus = bus
        self.queue_size = queue_size
        self.metrics = CreatureMetrics(bus, clock)
        self._io: IoLoop | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task | None = None

    def start(self, io: IoLoop) -> MetricsService:
        async def go() -> None:
            self._sub = self.bus.subscribe_async(CONSUMER, self.queue_size, INPUT_TYPES)
            self._task = asyncio.create_task(metrics_feed(self._sub, self.metrics), name=CONSUMER)

        self._io = io
        io.run(go())
        return self

    def stop(self) -> None:
        async def go() -> None:
            if self._task is not None:
                self._task.cancel()
            if self._sub is not None:
                self.bus.unsubscribe(self._sub)

        if self._io is not None and self._io.running:
            self._io.run(go())
        self._io = None


def served_metrics(
    cfg: CreatureConfig, bus: Bus, io: IoLoop, clock: Callable[[], float]
) -> MetricsService | None:
    """The session's metrics, started on ``io``, where they will be served: by the face
    server, so only with it (``metrics.enabled`` and ``face.enabled``); else None."""
    m = cfg.metrics
    if not (m.enabled and cfg.face.enabled):
        return None
    return MetricsService(bus, m.queue_size, clock).start(io)
