"""What both of the model server's protocols (Kyutai's ``/api/chat`` and its speech-to-text
``/api/asr-streaming``) do around a session: refuse one before it starts, join a slot with a
bounded output queue, read the client's binary messages under an idle timeout and a size cap,
run a receiver and a sender until either ends, and leave the slot however the session ends.

The output queue is the project's drop-oldest mailbox fed from the engine's thread: a client
that stops reading fills only its own queue, and each frame dropped for it is counted in its
session's stats (``dropped_out``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from track2_voice.common.web import CloseCode, ThreadFedMailbox
from track2_voice.model_server.engine import SlotOutput
from track2_voice.model_server.options import ServerOptions, SlotSampling
from track2_voice.model_server.scheduler import Scheduler, Session

log = logging.getLogger(__name__)
CLOSE_WAIT_S = 1.0

Outputs = ThreadFedMailbox[SlotOutput]
SendError = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Wording:
    """How one protocol words what ends or skips a client's message (its clients show them)."""

    quiet: str  # nothing received for ``idle`` seconds: the session closes
    not_binary: str  # a text message where binary ones are expected: skipped
    too_big: str  # over ``limit`` bytes (``size`` of them): the session closes


async def refuse(ws: Any, message: bytes, reason: str, code: int, what: str) -> None:
    """Tell the client why in the protocol's own message, then close with ``code``."""
    log.info("refused %s: %s", what, reason)
    try:
        await ws.send_bytes(message)
        await ws.close(code=code, reason=reason[:120])
    except Exception:  # the client left first
        pass


def join(
    scheduler: Scheduler, opts: ServerOptions, sampling: SlotSampling
) -> tuple[Session, Outputs]:
    """A slot for a new session and the queue its outputs arrive in (raises ``NoFreeSlot``)."""
    box: Outputs = ThreadFedMailbox(opts.output_queue_frames, asyncio.get_running_loop())
    session = scheduler.join(sampling, box.offer_threadsafe)

    def dropped() -> None:
        session.stats.dropped_out += 1

    box.on_drop = dropped
    return session, box


async def client_messages(
    ws: Any, session: Session, opts: ServerOptions, wording: Wording, error: SendError
) -> AsyncIterator[bytes]:
    """The client's binary messages until it leaves, sends nothing for ``idle_timeout_s`` or
    sends one over ``max_message_bytes`` (a front that allows more: Ray's proxy); the last two
    are told why, and the second closes the socket (1009)."""
    idle, limit = opts.idle_timeout_s, opts.max_message_bytes
    while True:
        try:
            msg = await asyncio.wait_for(ws.receive(), idle)
        except asyncio.TimeoutError:
            log.info("slot %d: no message for %g s; closing it", session.slot, idle)
            await error(wording.quiet.format(idle=idle))
            return
        if msg["type"] == "websocket.disconnect":
            return
        data = msg.get("bytes")
        if data is None:
            await error(wording.not_binary)
            continue
        if len(data) > limit:
            await error(wording.too_big.format(size=len(data), limit=limit))
            await ws.close(code=CloseCode.TOO_BIG)
            return
        yield data


async def run_session(
    ws: Any,
    scheduler: Scheduler,
    session: Session,
    box: Outputs,
    greet: Callable[[], Awaitable[None]],
    loops: Sequence[Callable[[], Awaitable[None]]],
) -> None:
    """``greet``, then the session's ``loops`` (its receiver and sender) until one ends; the
    slot is left and the socket closed however it ends."""
    tasks: list[asyncio.Task] = []
    try:
        await greet()
        tasks = [asyncio.create_task(loop()) for loop in loops]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except Exception as e:
        log.debug("session in slot %d ended: %s", session.slot, e)
    finally:
        box.close()
        scheduler.leave(session)
        for t in tasks:
            t.cancel()
        log.info("session in slot %d left: %s", session.slot, session.summary())
        await close_quietly(ws)


async def close_quietly(ws: Any, code: int = 1000) -> None:
    try:
        await asyncio.wait_for(ws.close(code=code), CLOSE_WAIT_S)
    except Exception:
        pass
