"""The slow loop as a service: the brain, hosted on the creature's I/O loop, with the I/O it
needs to act (the outbox file, the robot channel, the webhook).

It consumes a bounded bus subscription, so the fast loop never waits on it; the brain's
decisions go back on the bus as typed events (and so into the session record). After each
batch of events it hands the newest frame's face state to ``face`` (the face server's
``publish``), computed on this loop: nothing reads the brain's state from another thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from face.state_files import load_or_make_secret
from orchestrator.brain.brain import Brain
from orchestrator.brain.dispatcher import tool_call_message
from orchestrator.brain.events import OutboxResumed, ServiceError
from orchestrator.brain.outbox import Outbox, open_outbox
from orchestrator.brain.viseme_track import VisemeTracker
from orchestrator.bus import Bus, Subscription
from orchestrator.data_files import load_affect_map
from orchestrator.runtime.brain_tasks import (
    FacePublish,
    consume_events,
    sweep,
)
from orchestrator.runtime.expression_stream import ExpressionStream
from orchestrator.runtime.io_loop import IoLoop
from orchestrator.runtime.planner_client import PlannerClient
from orchestrator.runtime.robot_channel import build_app
from orchestrator.runtime.webhook import WebhookSink
from orchestrator.slow_config import InterpretConfig, SlowLoopConfig
from orchestrator.state_dir import OUTBOX, ROBOT_TOKEN, WEBHOOK_SECRET, state_dir
from track2_voice.common.limits import RefusalLog
from track2_voice.common.web import AppServer, bind_socket
from track2_voice.events import (
    Connected,
    Disconnected,
    FrameEvent,
    LoopStopped,
    PassageEnded,
    UserSpeechEnded,
    UserSpeechStarted,
    UserWord,
)

log = logging.getLogger(__name__)
INPUT_TYPES = (
    FrameEvent,
    UserSpeechStarted,
    UserSpeechEnded,
    Connected,
    Disconnected,
    LoopStopped,
    PassageEnded,
    UserWord,  # the user's side, for the dialogue (docs/slow_loop.md, "Dialogue")
)
TOKEN_ENV = "CREATURE_ROBOT_TOKEN"
SECRET_ENV = "CREATURE_WEBHOOK_SECRET"
SETTLE_POLL_S = 0.05


class BrainHost:
    """The brain and the I/O it acts through (outbox, robot channel, webhook, planner),
    started and stopped together on one I/O loop."""

    def __init__(
        self,
        cfg: SlowLoopConfig,
        bus: Bus,
        io: IoLoop | None = None,
        state: Path | None = None,
        visemes: VisemeTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
        interpret: InterpretConfig | None = None,
    ) -> None:
        self.cfg = cfg
        self.interpret = interpret  # interpreter mode's settings, or None
        self.visemes = visemes
        self.bus = bus
        self.clock = clock  # the frames' clock: a replay runs the record's
        self.state = state if state is not None else state_dir(None)
        self.token_file: Path | None = None
        self.token = os.environ.get(TOKEN_ENV) or cfg.robot.token or self._made(ROBOT_TOKEN)
        self.webhook_secret = (
            os.environ.get(SECRET_ENV) or cfg.webhook.secret or self._made(WEBHOOK_SECRET)
            if cfg.webhook.url
            else None
        )
        self.outbox_path = Path(cfg.outbox.path) if cfg.outbox.path else self.state / OUTBOX
        self.refusals = RefusalLog()
        # read now, before any audio or model is opened (a bad file is an AffectMapError, a
        # ConfigError: one line naming it)
        self.affect_map = load_affect_map(cfg.affect.file)
        self.io = io
        self._own_io = io is None
        self.face: FacePublish | None = None
        self.expression: ExpressionStream | None = None  # bodies' live look, with the robots
        self.brain: Brain | None = None
        self.outbox: Outbox | None = None
        self.port: int | None = None
        self._server: AppServer | None = None
        self._webhook: WebhookSink | None = None
        self._planner: PlannerClient | None = None
        self._sub: Subscription | None = None
        self._task = None
        self._sweeper = None

    def _made(self, name: str) -> str:
        """A secret made on first run and kept in the state directory."""
        path = self.state / name
        if name == ROBOT_TOKEN:
            self.token_file = path
        return load_or_make_secret(self.state, name)

    # -- lifecycle (from any thread) -----------------------------------------------------------
    def start(self) -> BrainHost:
        """Start on the I/O loop (its own one if none was given); returns once the robot
        channel listens."""
        if self.io is None:
            self.io = IoLoop("slow-loop").start()
        self.io.run(self.astart())
        return self

    def stop(self) -> None:
        if self.io is not None and self.io.running:
            self.io.run(self.aclose())
            if self._own_io:
                self.io.stop()

    # -- lifecycle (on the I/O loop) --------------------------------------------------------------
    async def astart(self) -> None:
        self.outbox = open_outbox(self.outbox_path, "slow_loop.outbox.path")
        pruned = self.outbox.prune(self.cfg.outbox.keep_settled_s)
        if pruned:
            log.info(
                "outbox: removed %d settled calls older than %gs",
                pruned,
                self.cfg.outbox.keep_settled_s,
            )
        # the brain compiles the intent rules and the tool schema now, not on the first call
        brain = self.brain = Brain(
            self.cfg,
            self.affect_map,
            self.outbox,
            self.bus.publish,
            self.clock,
            visemes=self.visemes,
            interpret=self.interpret,
        )
        if self.cfg.webhook.url:
            self._webhook = WebhookSink(
                self.cfg.webhook, self.webhook_secret, brain.dispatcher.on_webhook_result
            )
            self._webhook.start()
            brain.dispatcher.webhook = self._webhook
            for call in self.outbox.webhook_pending():  # a restart resumes webhook delivery
                self._webhook.submit(tool_call_message(call.id, call.args, call.attempts + 1))
        if brain.deliberation is not None:
            d = brain.deliberation
            self._planner = d.port = PlannerClient(self.cfg.planner, d.read, d.answered)
            log.info("planner: %s (policy %s)", self._planner.url, self.cfg.planner.policy)
        if self.cfg.robot.enabled:
            await self._serve_robots()
        open_calls = self.outbox.open_calls()
        if open_calls:
            brain.emit(OutboxResumed(open=[c.id for c in open_calls]))
        self._sub = self.bus.subscribe_async("slow_loop", self.cfg.queue_size, INPUT_TYPES)
        self._task = self.io.loop.create_task(consume_events(self._sub, brain, self._publisher))
        self._sweeper = self.io.loop.create_task(sweep(brain.dispatcher))

    def _publisher(self) -> FacePublish | None:
        """Where the newest face state goes: the face and the bodies' expression stream."""
        stream = self.expression if self.expression and self.expression.subscribers else None
        if stream is None or self.face is None:
            return self.face or (stream.publish if stream else None)
        face = self.face
        return lambda state: (face(state), stream.publish(state))

    async def _serve_robots(self) -> None:
        """Bind the robot channel's port ourselves, so a busy port is one clear warning and the
        creature keeps talking (calls wait in the outbox) instead of a dead process."""
        host, port = self.cfg.robot.host, self.cfg.robot.port
        try:
            sock = bind_socket(host, port, "slow_loop.robot.port")
        except OSError as e:
            msg = f"{e}; the robot channel is off for this run and calls wait in the outbox"
            log.error(msg)
            self.brain.emit(ServiceError(where="robot_channel", error=msg))
            return
        app = build_app(self.brain.dispatcher, self.cfg.robot, self.token, self.refusals)
        self.expression = ExpressionStream(
            self.token, self.cfg.robot.allowed_origins, self.refusals
        )
        app = self.expression.in_front_of(app)  # WS /expression beside /robot, same token
        self._server = await AppServer(
            app, sock, "robot-channel", self.cfg.robot.limits, self.refusals
        ).start()
        self.port = self._server.port

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._task is not None:
            self._task.cancel()
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
        if self._server is not None:
            await self._server.stop()
        if self._webhook is not None:
            await self._webhook.close()
        if self._planner is not None:
            await self._planner.aclose()
            self.brain.deliberation.close()
        if self.outbox is not None:
            self.outbox.close()

    # -- where robots connect -----------------------------------------------------------------------
    @property
    def robot_url(self) -> str | None:
        return None if self.port is None else f"ws://{self.cfg.robot.host}:{self.port}/robot"

    def robot_hint(self) -> str:
        """Where a robot connects and where it finds its token (never the token itself)."""
        if self.token_file is not None:
            where = f"token in {self.token_file}"
        elif os.environ.get(TOKEN_ENV):
            where = f"token from ${TOKEN_ENV}"
        else:
            where = "token: slow_loop.robot.token"
        return (
            f"robot channel: {self.robot_url} ({where}); run: python examples/robot_client.py "
            f"--url {self.robot_url}"
        )

    @property
    def http_url(self) -> str | None:
        return None if self.port is None else f"http://{self.cfg.robot.host}:{self.port}"

    # -- reading the brain from another thread (CLI, tests) ------------------------------------
    def run_sync(self, fn, *args) -> Any:
        """``fn(*args)`` on the I/O loop's thread, where the brain lives."""
        assert self.io is not None
        return self.io.run_sync(fn, *args)

    @property
    def dispatcher(self):
        return self.brain.dispatcher if self.brain is not None else None

    @property
    def states(self):
        return self.brain.states if self.brain is not None else None

    @property
    def intents(self) -> int:
        return self.brain.intents if self.brain is not None else 0

    def open_calls(self) -> list:
        return self.run_sync(lambda: self.outbox.open_calls()) if self.outbox else []

    def wait_settled(self, timeout_s: float) -> bool:
        """Wait (bounded) until every call reached a terminal status, if a robot is here to
        finish them. Returns True when nothing is left open."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                pending = self.open_calls()
                robots = self.run_sync(lambda: len(self.brain.dispatcher.robots))
            except Exception:
                return False
            if not pending:
                return True
            if not robots:
                return False
            time.sleep(SETTLE_POLL_S)
        return False
