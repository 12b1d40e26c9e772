"""The slow loop: intents, tool calls, the robot channel, the state machine and affect.

It runs an asyncio loop on its own thread and consumes a bounded hub subscription, so the
fast loop never waits on it. Everything it decides is published back to the hub as a
VoiceEvent (intent, tool_call, tool_status, tool_rejected, tool_cancel, state, ...), which
puts every step into the JSONL session record. ``face_state(frame_event)`` can be called
from any thread, every frame: it reads immutable snapshots and never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import time
from typing import Any

import uvicorn

from affect.affect_map import AffectMapError, load_affect_map
from affect.mixer import AffectMixer
from orchestrator.brain.dispatcher import ToolDispatcher
from orchestrator.brain.intents import IntentWatcher
from orchestrator.brain.outbox import Outbox
from orchestrator.brain.states import CreatureStates
from orchestrator.brain.tools import TERMINAL, SafetyGate, _validator
from orchestrator.config import ConfigError
from orchestrator.runtime.face_bridge import SPEAKING_MOUTH
from orchestrator.runtime.robot_channel import build_app
from orchestrator.runtime.webhook import WebhookSink
from orchestrator.slow_config import SlowLoopConfig
from track2_voice.events import EventHub, FrameEvent, VoiceEvent

log = logging.getLogger(__name__)
logging.getLogger("transitions").setLevel(logging.ERROR)  # each change is a "state" event
INPUT_KINDS = {
    "frame",
    "user_speech_started",
    "user_speech_ended",
    "connected",
    "disconnected",
    "loop_stopped",
}
SPEAKING_HANGOVER_FRAMES = (
    6  # a speaking creature keeps counting as speaking this many quiet frames
)
START_TIMEOUT_S = 10.0
TOKEN_ENV = "CREATURE_ROBOT_TOKEN"
STATUS_EVENTS = {  # terminal tool statuses -> affect event names
    "succeeded": "tool_succeeded",
    "failed": "tool_failed",
    "cancelled": "tool_cancelled",
}


def _presets_from_face() -> dict[str, tuple[float, float]] | None:
    """The face's emotion presets (affect.presets), when that module is installed."""
    try:
        from affect.presets import load_presets  # type: ignore[import-not-found]

        emotions = load_presets()["emotions"]
        return {k: (float(v["valence"]), float(v["arousal"])) for k, v in emotions.items()}
    except Exception:  # not there yet, or no emotions.yaml: configs/affect.yaml has fallbacks
        return None


class SlowLoop:
    def __init__(self, cfg: SlowLoopConfig, hub: EventHub) -> None:
        self.cfg = cfg
        self.hub = hub
        self.token = os.environ.get(TOKEN_ENV) or cfg.robot.token
        self.watcher = IntentWatcher(cfg.intents)
        try:
            amap = load_affect_map(cfg.affect.file, _presets_from_face())
        except AffectMapError as e:
            raise ConfigError(str(e)) from None
        self.mixer = AffectMixer(amap, time.monotonic())
        self.states = CreatureStates(self._on_state)
        self.connected = True
        self.port: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.intents = 0
        self._sub = None  # subscribed by start(), so an unstarted slow loop drops nothing
        self._last_index = -1
        self._quiet_frames = SPEAKING_HANGOVER_FRAMES
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self.outbox: Outbox | None = None
        self.dispatcher: ToolDispatcher | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> SlowLoop:
        """Subscribe to the hub and start the thread; returns once the robot channel listens."""
        self._sub = self.hub.subscribe("slow_loop", self.cfg.queue_size, INPUT_KINDS)
        self._thread = threading.Thread(target=self._thread_main, name="slow-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the slow loop did not start in time")
        if self._error is not None:
            raise self._error
        return self

    @property
    def robot_url(self) -> str | None:
        if self.port is None:
            return None
        return f"ws://{self.cfg.robot.host}:{self.port}/robot"

    @property
    def http_url(self) -> str | None:
        return None if self.port is None else f"http://{self.cfg.robot.host}:{self.port}"

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported to start() or logged
            self._error = e
            self._ready.set()
            log.exception("slow loop failed")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.outbox = Outbox(self.cfg.outbox.path)
        _validator()  # compile the tool schema now, not on the first call
        self.dispatcher = ToolDispatcher(
            self.outbox, SafetyGate(self.cfg.safety), self._emit, self.cfg.outbox.max_age_s
        )
        webhook = None
        if self.cfg.webhook.url:
            webhook = WebhookSink(self.cfg.webhook, self.token, self.dispatcher.on_webhook_result)
            webhook.start()
            self.dispatcher.webhook = webhook
            for call in self.outbox.webhook_pending():  # a restart resumes webhook delivery
                webhook.submit(
                    {
                        "type": "tool_call",
                        "id": call.id,
                        "name": "do_physical_task",
                        "arguments": call.args,
                        "attempt": call.attempts + 1,
                    }
                )
        server_task = None
        sock = self._bind() if self.cfg.robot.enabled else None
        if sock is not None:
            app = build_app(self.dispatcher, self.cfg.robot, self.token)
            config = uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                ws="websockets-sansio" if _has_sansio() else "websockets",
            )
            self._server = uvicorn.Server(config)
            self._server.install_signal_handlers = lambda: None  # the fast loop owns Ctrl-C
            server_task = asyncio.create_task(
                self._server.serve(sockets=[sock]), name="robot-channel"
            )
            while not self._server.started:
                if server_task.done():
                    raise RuntimeError("the robot channel server stopped before it started")
                await asyncio.sleep(0.005)
            self.port = sock.getsockname()[1]
        open_calls = self.outbox.open_calls()
        if open_calls:
            self._emit("outbox_resumed", {"open": [c.id for c in open_calls]})
        self._sub.use_asyncio_wakeup(self.loop)
        consumer = asyncio.create_task(self._consume(), name="slow-loop-consumer")
        self._ready.set()
        await self._stopping.wait()
        consumer.cancel()
        if self._server is not None:
            self._server.should_exit = True
            if server_task is not None:
                try:
                    await asyncio.wait_for(server_task, 3.0)
                except (asyncio.TimeoutError, Exception):
                    server_task.cancel()
        if webhook is not None:
            await webhook.close()
        self.outbox.close()

    def _bind(self) -> socket.socket | None:
        """Bind the robot channel's port ourselves, so a busy port is one clear warning and the
        creature keeps talking (calls wait in the outbox) instead of a dead process."""
        host, port = self.cfg.robot.host, self.cfg.robot.port
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            msg = (
                f"slow_loop.robot: cannot listen on {host}:{port} ({e.strerror}); the robot "
                "channel is off for this run and calls wait in the outbox. Choose another "
                "slow_loop.robot.port (0 = any free port)."
            )
            log.error(msg)
            self._emit("error", {"where": "robot_channel", "error": msg})
            return None
        sock.listen(64)
        sock.setblocking(False)
        return sock

    def stop(self) -> None:
        if self.loop is not None and self._stopping is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sub is not None:
            self.hub.unsubscribe(self._sub)

    def call(self, fn, *args) -> Any:
        """Run ``fn(*args)`` on the slow loop's thread and return its result (for tests/CLI)."""
        assert self.loop is not None

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=5)

    def open_calls(self) -> list:
        return self.call(lambda: self.outbox.open_calls()) if self.outbox else []

    def wait_settled(self, timeout_s: float) -> bool:
        """Wait (bounded) until every call reached a terminal status, if a robot is here to
        finish them. Returns True when nothing is left open."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                pending = self.open_calls()
                robots = self.call(lambda: len(self.dispatcher.robots))
            except (RuntimeError, concurrent.futures.TimeoutError):
                return False
            if not pending:
                return True
            if not robots:
                return False
            time.sleep(0.05)
        return False

    # -- events in ----------------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            ev = await self._sub.get()
            try:
                await self._handle(ev)
            except Exception:
                log.exception("slow loop: event %s failed", ev.kind)

    async def _handle(self, ev) -> None:
        if isinstance(ev, FrameEvent):
            self._last_index = ev.index
            for intent in self.watcher.feed(ev.index, ev.t, ev.text, ev.mouth):
                self.intents += 1
                lag_ms = (time.monotonic() - ev.t) * 1000.0
                self._emit("intent", {**intent.to_dict(), "lag_ms": round(lag_ms, 3)})
                self.dispatcher.submit(intent)
                self._affect_event("intent")
                await asyncio.sleep(0)  # let the robot's sender go before the next event
            speaking = ev.mouth >= SPEAKING_MOUTH or bool(ev.text)
            self._quiet_frames = 0 if speaking else self._quiet_frames + 1
            now_speaking = self._quiet_frames < SPEAKING_HANGOVER_FRAMES
            if now_speaking != self.states.creature_is_speaking:
                await self.states.creature(now_speaking)
            if ev.user_speaking != self.states.user_is_speaking:
                await self.states.user(ev.user_speaking)
            return
        kind = ev.kind
        if kind == "user_speech_started":
            await self.states.user(True)
        elif kind == "user_speech_ended":
            await self.states.user(False)
        elif kind == "disconnected":
            self.connected = False
            await self.states.lost()
        elif kind == "connected":
            self.connected = True
            await self.states.found()
        elif kind == "loop_stopped":
            for intent in self.watcher.flush():
                self._emit("intent", intent.to_dict())
                self.dispatcher.submit(intent)

    # -- events out ---------------------------------------------------------------------------
    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        """Publish a slow-loop event to the hub (and so to the record), and react to it."""
        self.hub.publish(VoiceEvent(kind, self._last_index, time.monotonic(), data))
        if kind in (
            "tool_call",
            "tool_status",
            "tool_rejected",
            "robot_connected",
            "robot_disconnected",
        ):
            asyncio.get_running_loop().create_task(self._react(kind, data))

    async def _react(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "tool_call":
            await self.states.task_started()
        elif kind == "tool_status":
            status = data.get("status")
            if status in STATUS_EVENTS:
                self._affect_event(STATUS_EVENTS[status])
            if status in TERMINAL and not self.outbox.open_calls():
                await self.states.task_done()
        elif kind in ("tool_rejected", "robot_connected", "robot_disconnected"):
            self._affect_event(kind)
            # acting means a robot is at work: not while none is connected (calls stay open
            # in the outbox and resume when one comes back)
            if kind == "robot_disconnected" and not self.dispatcher.robots:
                await self.states.task_done()
            elif kind == "robot_connected" and self.outbox.open_calls():
                await self.states.task_started()

    def _publish_look(self, cause: str, look, passing: bool) -> None:
        self.hub.publish(
            VoiceEvent(
                "affect",
                self._last_index,
                time.monotonic(),
                {
                    "cause": cause,
                    "emotion": look.emotion,
                    "valence": round(look.valence, 3),
                    "arousal": round(look.arousal, 3),
                    "mood": look.mood,
                    "passing": passing,
                },
            )
        )

    def _affect_event(self, name: str) -> None:
        look = self.mixer.event(name, time.monotonic())
        if look is not None:
            self._publish_look(name, look, True)

    async def _on_state(self, src: str, dst: str, trigger: str) -> None:
        look = self.mixer.set_state(dst, time.monotonic())
        self.hub.publish(
            VoiceEvent(
                "state",
                self._last_index,
                time.monotonic(),
                {"from": src, "to": dst, "trigger": trigger},
            )
        )
        self._publish_look(f"state:{dst}", look, False)

    # -- the face ------------------------------------------------------------------------------
    def face_state(self, frame: FrameEvent | None = None, t: float | None = None) -> dict:
        """``{emotion, mouth, speaking, valence, arousal, listening, t, connected, ...}`` for
        one fast-loop frame. Safe on any thread; never blocks."""
        now = time.monotonic()
        look = self.mixer.sample(now)
        mouth = float(frame.mouth) if frame is not None else 0.0
        state = getattr(self.states, "state", "idle")
        return {
            "emotion": look.emotion,
            "mouth": round(mouth, 4),
            "speaking": bool(mouth >= SPEAKING_MOUTH or self.states.creature_is_speaking),
            "valence": round(look.valence, 4),
            "arousal": round(look.arousal, 4),
            "listening": bool(
                frame.user_speaking if frame is not None else self.states.user_is_speaking
            ),
            "t": round(t if t is not None else (frame.t if frame is not None else now), 6),
            "connected": self.connected,
            "state": state,
            "mood": look.mood,
            "robot": bool(self.dispatcher and self.dispatcher.robots),
        }


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401

        return True
    except ImportError:
        return False
