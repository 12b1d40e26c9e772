"""The two tasks that keep the hosted brain going on the I/O loop: the event consumer (the
bus into the brain, the face state out) and the calls' clock. Each survives a failing step:
it is logged and the next one runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.face_state import FaceSource
from orchestrator.bus import Subscription
from track2_voice.events import FrameEvent

# the host's logger: these lines read as they always have
log = logging.getLogger("orchestrator.runtime.brain_host")
SWEEP_S = 0.2
FacePublish = Callable[[dict[str, Any]], None]


async def consume_events(
    sub: Subscription, source: FaceSource, face: Callable[[], FacePublish | None]
) -> None:
    """The consumer task: every event to ``source`` (the brain, or a neutral face), then the
    newest frame's face state to the face. A failing event is logged and skipped."""
    while True:
        last_frame = None
        for ev in await sub.get_batch():
            try:
                await source.handle(ev)
            except Exception:
                log.exception("event %s failed", ev.kind)
            if isinstance(ev, FrameEvent):
                last_frame = ev
        publish = face()
        if last_frame is not None and publish is not None:
            try:
                publish(source.face_state(last_frame).to_dict())
            except Exception as e:  # a bad state must not stop the brain
                log.warning("face state not published: %s", e)


async def sweep(dispatcher: ToolDispatcher) -> None:
    """The calls' clock: deadlines (expiry, reclaim, acknowledgement) and the operator's
    cancels are looked at every ``SWEEP_S``, whatever the voice is doing."""
    while True:
        await asyncio.sleep(SWEEP_S)
        try:
            dispatcher.sweep()
        except Exception:
            log.exception("call sweep failed")
