"""The brain: events in, decisions out. Plain async code on one event loop, no sockets.

It hears the creature's own words (frame events with text pieces) and turns commitments into
``do_physical_task`` calls (intent watcher -> safety gate -> outbox -> the robot link it is
given), keeps the state machine in step with who is speaking, plays the affect map, and
composes the face state for each frame. As an interpreter (``mode: interpret``) its voice is a
visitor's words translated: it follows the passages (``interpreter.py``), puts the captions and
who speaks on the face, and watches for commitments only if told to. Everything it decides is published as a typed event
(``orchestrator.brain.events``), which is also how it reacts to its own decisions: by type.

The runtime hosts it (``orchestrator.runtime``): it feeds the bus's events to :meth:`handle`,
connects robots to :attr:`dispatcher`, and sends :meth:`face_state` to the face. Tests drive
it with scripted event streams and no I/O at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from affect.affect_map import AffectMap
from affect.mixer import AffectMixer
from orchestrator.brain import assembly
from orchestrator.brain.actions import load_actions
from orchestrator.brain.dialogue import Plan, RequestHeard, Stop, Unsent
from orchestrator.brain.dispatcher import NO_CAPABLE_ROBOT
from orchestrator.brain.events import (
    CallChainDropped,
    DialogueBound,
    DialogueUnsent,
    IntentDetected,
    RobotConnected,
    RobotDisconnected,
    StateChanged,
    ToolCallSent,
    ToolRejected,
    ToolStatusChanged,
    UserRequestHeard,
    UserStopHeard,
)
from orchestrator.brain.face_state import FaceState, face_state, frame_visemes, visemes_index
from orchestrator.brain.intent_rules import Judgement
from orchestrator.brain.intents import Intent
from orchestrator.brain.interpreter import Interpreter
from orchestrator.brain.looks import Looks
from orchestrator.brain.outbox import Outbox
from orchestrator.brain.speaking import SpeakingDetector
from orchestrator.brain.states import CreatureStates
from orchestrator.brain.viseme_track import VisemeTracker
from orchestrator.slow_config import InterpretConfig, SlowLoopConfig
from track2_voice.events import (
    Connected,
    Disconnected,
    DiscreteEvent,
    Event,
    FrameEvent,
    LoopStopped,
    UserSpeechEnded,
    UserSpeechStarted,
    UserWord,
)

log = logging.getLogger(__name__)
logging.getLogger("transitions").setLevel(logging.ERROR)  # each change is a "state" event
Publish = Callable[[Event], None]


class Brain:
    def __init__(
        self,
        cfg: SlowLoopConfig,
        affect_map: AffectMap,
        outbox: Outbox,
        publish: Publish,
        clock: Callable[[], float] = time.monotonic,
        visemes: VisemeTracker | None = None,
        interpret: InterpretConfig | None = None,
    ) -> None:
        self.cfg = cfg
        self.visemes = visemes  # the mouth's shapes (face.lipsync: visemes)
        self.outbox = outbox
        self._publish = publish
        self._clock = clock
        # one action set for the watcher's verbs, the gate's allowlist and the tool schema
        self.actions = load_actions(cfg.actions.file)
        # every verdict on the creature's sentences, for the dialogue (it also needs the ones
        # that fired nothing: "Sure!", "Sorry, I can't")
        self._verdicts: list[tuple[Judgement, bool]] = []
        # the creature's sentences, and both sides of the conversation (docs/slow_loop.md)
        self.watcher, self.dialogue = assembly.hearing(
            cfg, self.actions, lambda j, rep: self._verdicts.append((j, rep))
        )
        # the calls of a plan waiting for the one before them: call id -> the rest, in order
        self.chains: dict[str, list[Intent]] = {}
        self.mixer = AffectMixer(affect_map, clock())
        self.looks = Looks(self.mixer, publish, clock, lambda: self._last_index)
        self.states = CreatureStates(self._on_state)
        self.speaking = SpeakingDetector()
        self.dispatcher = assembly.dispatcher(cfg, self.actions, outbox, self.emit, clock)
        self.deliberation = assembly.deliberation(cfg, self.dispatcher, outbox, self.emit, clock)
        self.connected = True
        self.intents = 0
        self._last_index = -1
        # an interpreter's words are a visitor's: commitments in them are not the creature's
        self.interpreter = Interpreter(interpret, self.emit) if interpret is not None else None
        self.watching = interpret is None or interpret.intents

    # -- events in ------------------------------------------------------------------------
    async def handle(self, ev: Event) -> None:
        """One event from the bus (the fast loop's, or the brain's own)."""
        if isinstance(ev, FrameEvent):
            await self._frame(ev)
        elif isinstance(ev, UserWord):
            if self.dialogue is not None and self.watching:
                self._decide(self.dialogue.user_word(ev, self._clock()), ev.t)
            if ev.final and self.deliberation is not None:
                self.deliberation.heard("user", ev.text, self._clock())
        elif isinstance(ev, UserSpeechStarted):
            await self.states.user(True)
        elif isinstance(ev, UserSpeechEnded):
            await self.states.user(False)
        elif isinstance(ev, Disconnected):
            self.connected = False
            await self.states.lost()
        elif isinstance(ev, Connected):
            self.connected = True
            await self.states.found()
        elif isinstance(ev, LoopStopped):
            if self.watching:
                self._creature_words(self.watcher.flush(), None, "end")
        if self.interpreter is not None:  # after the frame: it asks whether the voice speaks
            self.interpreter.handle(ev, self.speaking.speaking)

    async def _frame(self, ev: FrameEvent) -> None:
        self._last_index = ev.index
        if self.watching:
            fired = self.watcher.feed(ev.index, ev.t, ev.text, ev.mouth)
            if self._verdicts or fired:
                self._creature_words(fired, ev.t, None)
                await asyncio.sleep(0)  # let the robot's sender go before the next event
            if self.dialogue is not None:
                self._decide(self.dialogue.tick(self._clock()), ev.t)
            if self.deliberation is not None:
                self.deliberation.frame_done()
        if self.visemes is not None:
            self.visemes.update(ev)
        speaking = self.speaking.update(ev)
        if speaking != self.states.creature_is_speaking:
            await self.states.creature(speaking)
        if ev.user_speaking != self.states.user_is_speaking:
            await self.states.user(ev.user_speaking)

    def _creature_words(self, fired: list[Intent], t: float | None, boundary: str | None) -> None:
        """The watcher's verdicts on the creature's sentences since the last call: without the
        dialogue each fired intent is a call, as before; with it, the dialogue decides."""
        verdicts, self._verdicts = self._verdicts, []
        if self.deliberation is not None:  # the planner's view of the dialogue
            for verdict, repeated in verdicts:
                if not repeated:
                    self.deliberation.heard("creature", verdict.sentence, self._clock())
        if self.dialogue is None:
            for intent in fired:
                self._act_on(intent, None if t is None else (self._clock() - t) * 1000.0)
            return
        it = iter(fired)
        for verdict, repeated in verdicts:
            intent = next(it) if verdict.match is not None and not repeated else None
            index = intent.index if intent else self.watcher.last_index
            when = intent.t if intent else self.watcher.last_t
            why = intent.boundary if intent else (boundary or self.watcher.last_boundary)
            self._decide(
                self.dialogue.creature_said(verdict, index, when, why, self._clock(), repeated),
                t,
            )

    def _decide(self, decisions: list, t: float | None) -> None:
        """Act on what the dialogue decided (``t``: the frame or word time it came with)."""
        for d in decisions:
            if isinstance(d, Stop):
                self.emit(UserStopHeard(words=d.words, final=d.final, word_t=t or 0.0))
                self.chains.clear()
                self.dispatcher.cancel_all(f"the user said: {d.words}")
            elif isinstance(d, RequestHeard):
                self.emit(UserRequestHeard(**d.request.to_dict()))
            elif isinstance(d, Unsent):
                self.emit(
                    DialogueUnsent(
                        reason=d.reason, creature=d.creature, user=d.user, action=d.action
                    )
                )
            elif isinstance(d, Plan):
                self.emit(DialogueBound(**d.to_dict(), waited_s=round(d.waited_s, 3)))
                first, rest = d.intents[0], d.intents[1:]
                lag = None if t is None else (self._clock() - first.t) * 1000.0
                args = self._act_on(first, lag)
                if rest and args is not None:
                    self.chains[args["id"]] = rest

    def _chain_next(self, ev: ToolStatusChanged) -> None:
        """A plan's next call goes when the one before succeeded; it is dropped otherwise."""
        rest = self.chains.pop(ev.id, None)
        if not rest:
            return
        if ev.status.value != "succeeded":
            self.emit(
                CallChainDropped(
                    after=ev.id,
                    status=ev.status.value,
                    dropped=[i.action for i in rest],
                )
            )
            return
        args = self._act_on(rest[0], None)
        if len(rest) > 1 and args is not None:
            self.chains[args["id"]] = rest[1:]

    def _act_on(self, intent: Intent, lag_ms: float | None) -> dict | None:
        """``lag_ms`` is None for a phrase flushed when the session ends (no look, not counted
        in :attr:`intents`, which counts what was heard live)."""
        self.emit(IntentDetected(intent=intent, lag_ms=lag_ms))
        if self.actions.cancels_all(intent.action):
            self.chains.clear()  # the creature's own "I'll stop" ends every plan too
        d = self.deliberation  # a stop is never held for the planner
        if d is None or self.actions.cancels_all(intent.action) or d.rules_intent(intent):
            args = self.dispatcher.submit(intent)
        else:
            args = None  # held for the planner (confirm) or not the rules' to make (planner)
        if lag_ms is not None:
            self.intents += 1
            self.looks.event("intent")
        return args

    # -- decisions out ----------------------------------------------------------------------
    def emit(self, ev: DiscreteEvent) -> None:
        """Publish one of the brain's events (stamped with the last frame), then react to it."""
        ev.index, ev.t = self._last_index, self._clock()
        self._publish(ev)
        if isinstance(
            ev, (ToolCallSent, ToolStatusChanged, ToolRejected, RobotConnected, RobotDisconnected)
        ):
            asyncio.get_running_loop().create_task(self._react(ev))

    async def _react(self, ev: DiscreteEvent) -> None:
        # acting means a robot is at work: not while none is connected (calls stay open in
        # the outbox and resume when one comes back)
        if isinstance(ev, ToolCallSent):
            await self.states.task_started()
        elif isinstance(ev, ToolStatusChanged):
            if ev.status.terminal:
                self._chain_next(ev)
            self.looks.outcome(ev.status.value)
            if ev.status.terminal and not self.outbox.open_calls():
                await self.states.task_done()
        elif isinstance(ev, ToolRejected):  # a body that can't is not a rule that won't
            self.looks.event("tool_cannot" if ev.code == NO_CAPABLE_ROBOT else "tool_rejected")
        elif isinstance(ev, RobotDisconnected):
            self.looks.event("robot_disconnected")
            if not self.dispatcher.robots:
                await self.states.task_done()
        elif isinstance(ev, RobotConnected):
            self.looks.event("robot_connected")
            if self.outbox.open_calls():
                await self.states.task_started()

    async def _on_state(self, src: str, dst: str, trigger: str) -> None:
        look = self.mixer.set_state(dst, self._clock())
        self._publish(
            StateChanged(index=self._last_index, t=self._clock(), src=src, dst=dst, trigger=trigger)
        )
        self.looks.show(f"state:{dst}", look, False)

    # -- the face -----------------------------------------------------------------------------
    def face_state(self, frame: FrameEvent) -> FaceState:
        """The face message for ``frame`` (call it on the brain's loop, after ``handle``)."""
        return face_state(
            frame,
            speaking=self.speaking.speaking,
            connected=self.connected,
            look=self.mixer.sample(self._clock()),
            state=self.states.state,
            robot=bool(self.dispatcher.robots),
            visemes=frame_visemes(self.visemes, frame),
            visemes_index=visemes_index(self.visemes),
            interpreter=self.interpreter,
        )
