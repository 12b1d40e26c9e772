"""An HTTP webhook sink for tool calls: POST with a timeout and retries, never in the way.

One worker task posts calls in order; a receiver that hangs only delays later webhook posts,
never the robot channel, the slow loop or (being on another thread) the fast loop.

Every POST is signed the way payment and messaging carriers sign theirs: header
``X-Creature-Timestamp: T`` (Unix seconds) and ``X-Creature-Signature: sha256=HEX`` where HEX is
the HMAC-SHA256 of ``T + "." + body`` under the webhook's own secret
(``slow_loop.webhook.secret``, made on first run). The receiver recomputes it over the raw body
and rejects a mismatch or an old T (replays); ``verify_signature`` does exactly that. The
robot's token is never sent: a receiver that leaks what it gets cannot become the robot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from orchestrator.slow_config import WebhookConfig
from track2_voice.redact import redact_url

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Creature-Signature"
TIMESTAMP_HEADER = "X-Creature-Timestamp"
MAX_SKEW_S = 300.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, headers: Any, body: bytes, now: float | None = None, max_skew_s: float = MAX_SKEW_S
) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    ts = headers.get(TIMESTAMP_HEADER) or headers.get(TIMESTAMP_HEADER.lower()) or ""
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
    try:
        age = abs((time.time() if now is None else now) - float(ts))
    except ValueError:
        return False
    return age <= max_skew_s and hmac.compare_digest(given, sign(secret, ts, body))


class WebhookSink:
    def __init__(
        self,
        cfg: WebhookConfig,
        secret: str,
        on_result: Callable[[str, str, str | None], None],
    ) -> None:
        """``on_result(call_id, 'done' | 'failed', reason)`` is called on the loop thread."""
        self.cfg = cfg
        self.secret = secret
        self.on_result = on_result
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=cfg.queue_size)
        self.dropped = 0
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.cfg.timeout_s)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook")

    def submit(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("webhook queue full: %s not posted", message.get("id"))

    async def _post(self, message: dict[str, Any]) -> str | None:
        """One message with retries. Returns None on success, else the last error."""
        assert self._client is not None and self.cfg.url
        delay = self.cfg.backoff_s
        error: str | None = "not attempted"
        body = json.dumps(message, separators=(",", ":")).encode()
        for attempt in range(self.cfg.retries + 1):
            ts = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                TIMESTAMP_HEADER: ts,
                SIGNATURE_HEADER: sign(self.secret, ts, body),
            }
            try:
                r = await self._client.post(self.cfg.url, content=body, headers=headers)
                if 200 <= r.status_code < 300:
                    return None
                error = f"HTTP {r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    return error  # the receiver refuses this message: retrying will not help
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            if attempt < self.cfg.retries:
                await asyncio.sleep(delay)
                delay *= 2
        return error

    async def _run(self) -> None:
        while True:
            message = await self.queue.get()
            error = await self._post(message)
            call_id = str(message.get("id", ""))
            if error is not None:
                log.warning("webhook %s: %s", redact_url(self.cfg.url), error)
            if message.get("type") == "tool_call":
                self.on_result(call_id, "failed" if error else "done", error)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._client is not None:
            await self._client.aclose()
