"""The planner's HTTP side: an OpenAI-compatible chat-completions client on the I/O loop.

At most one request in flight: a newer question cancels the one in flight (reported as
``superseded``), because the newer dialogue state is the one worth an answer. Each request has
a whole-time limit (``timeout_s``); the answer is read with a size cap before it is parsed, and
parsed with the depth-limited parser every socket uses. An endpoint that fails, hangs or goes
away is a verdict in the record, never an exception in the brain, and never a wait for the
voice: the fast loop runs on its own thread and the brain only hands questions over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

import httpx

from orchestrator.brain.planner import PlannerRequest
from orchestrator.brain.planner_answer import PlannerAnswer, Verdict
from orchestrator.slow_config import PlannerConfig
from track2_voice.common.errors import CreatureError
from track2_voice.common.web import loads_bounded

log = logging.getLogger(__name__)
MAX_JSON_DEPTH = 32
Read = Callable[[PlannerRequest, object], PlannerAnswer]
Answered = Callable[[PlannerRequest, PlannerAnswer, float], None]


class PlannerHTTPError(CreatureError):
    """The endpoint answered, but not with a chat-completions body we can take."""


def completions_url(base: str) -> str:
    """``http://host:8080/v1`` -> ``.../v1/chat/completions`` (a full URL is kept)."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


class PlannerClient:
    """Built on the I/O loop; ``ask`` returns at once (the brain's :class:`PlannerPort`)."""

    def __init__(self, cfg: PlannerConfig, read: Read, answered: Answered) -> None:
        assert cfg.url
        self.cfg = cfg
        self.url = completions_url(cfg.url)
        self._read = read
        self._answered = answered
        headers = {"content-type": "application/json"}
        key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if key:
            headers["authorization"] = f"Bearer {key}"
        self._http = httpx.AsyncClient(headers=headers, timeout=cfg.timeout_s)
        self._task: asyncio.Task | None = None
        self._closing = False
        self.asked = 0

    def ask(self, request: PlannerRequest) -> None:
        if self._closing:
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()  # it reports itself superseded
        self.asked += 1
        self._task = asyncio.get_running_loop().create_task(self._run(request))

    async def _run(self, request: PlannerRequest) -> None:
        t0 = time.perf_counter()
        try:
            body = await asyncio.wait_for(self._post(request.body), self.cfg.timeout_s)
            answer = self._read(request, body)
        except asyncio.CancelledError:
            if self._closing:
                raise
            answer = PlannerAnswer(Verdict.SUPERSEDED, detail="a newer dialogue state")
        except asyncio.TimeoutError:
            answer = PlannerAnswer(
                Verdict.TIMEOUT, detail=f"no answer in {self.cfg.timeout_s:g}s (timeout_s)"
            )
        except PlannerHTTPError as e:
            answer = PlannerAnswer(Verdict.MALFORMED, detail=str(e))
        except (httpx.HTTPError, OSError) as e:
            answer = PlannerAnswer(Verdict.ERROR, detail=f"{type(e).__name__}: {e}"[:200])
        latency_ms = (time.perf_counter() - t0) * 1000.0
        try:
            self._answered(request, answer, latency_ms)
        except Exception:  # the brain's bug must not kill the client
            log.exception("planner answer %d not applied", request.id)

    async def _post(self, body: dict) -> object:
        cap = self.cfg.max_response_bytes
        async with self._http.stream("POST", self.url, json=body) as r:
            length = r.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > cap:
                raise PlannerHTTPError(
                    f"answer of {length} bytes is over {cap} (max_response_bytes)"
                )
            buf = bytearray()
            async for chunk in r.aiter_bytes():
                buf += chunk
                if len(buf) > cap:
                    raise PlannerHTTPError(f"answer over {cap} bytes (max_response_bytes)")
            if r.status_code != 200:
                text = bytes(buf[:160]).decode("utf-8", "replace")
                raise PlannerHTTPError(f"HTTP {r.status_code}: {text}")
        try:
            return loads_bounded(bytes(buf), MAX_JSON_DEPTH, max_bytes=cap)
        except (ValueError, RecursionError) as e:
            raise PlannerHTTPError(f"answer is not JSON ({str(e)[:80]})") from None

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self._http.aclose()
