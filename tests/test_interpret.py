"""Interpreter mode on scripted event streams: the brain follows a visitor's speech and its
translation (who speaks, captions, the passage timing in the record) and, by default, acts
on no commitment in the translated words."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from orchestrator.brain.brain import Brain
from orchestrator.brain.events import (
    IntentDetected,
    PassageTranslated,
    ToolCallSent,
    TranslationStarted,
)
from orchestrator.brain.interpreter import MAX_PASSAGE_CHARS, Speaker
from orchestrator.brain.outbox import Outbox
from orchestrator.config import load_config
from orchestrator.data_files import load_affect_map
from tests.slow_support import LinkToARobot, slow_cfg
from track2_voice.backends.model_kind import HIBIKI_ZERO_REPO
from track2_voice.events import (
    FrameEvent,
    LoopStopped,
    PassageEnded,
    UserSpeechEnded,
    UserSpeechStarted,
)
from track2_voice.texttap import piece_text

FRAME_S = 0.08
COMMITMENT = "Sure, I'll pick up the red cup."


class Clock:
    """The frames' clock, stepped by the script."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make_brain(tmp_path, **interpret) -> Brain:
    cfg = load_config(
        overrides={"mode": "interpret", **{f"interpret.{k}": v for k, v in interpret.items()}}
    )
    clock = Clock()
    published: list = []
    b = Brain(
        slow_cfg(tmp_path),
        load_affect_map(),
        Outbox(tmp_path / "outbox.sqlite3"),
        published.append,
        clock,
        interpret=cfg.interpreting,
    )
    b.published, b.clock = published, clock
    b.dispatcher.robot_connected(LinkToARobot())
    return b


class Script:
    """Frames 80 ms apart; the visitor's speech events in between, as the detector sends them."""

    def __init__(self, brain: Brain) -> None:
        self.brain, self.i = brain, 0

    @property
    def t(self) -> float:
        return self.brain.clock.t

    async def frame(self, text: str | None = None, mouth: float = 0.0, visitor: bool = False):
        self.brain.clock.t += FRAME_S
        ev = FrameEvent(
            index=self.i,
            t=self.t,
            mouth=mouth,
            rms_db=-30.0,
            text=text,
            user_speaking=visitor,
            pcm=np.zeros(1920, np.float32),
        )
        self.i += 1
        await self.brain.handle(ev)
        await asyncio.sleep(0)  # the brain's reactions run as tasks on this loop
        return ev

    async def event(self, ev) -> None:
        ev.index, ev.t = self.i, self.t
        await self.brain.handle(ev)

    async def visitor_says(self, frames: int) -> float:
        await self.event(UserSpeechStarted(probability=0.9))
        start = self.t
        for _ in range(frames):
            await self.frame(visitor=True)
        await self.event(UserSpeechEnded(probability=0.1, silence_ms=0.0))
        return start

    async def translation_says(self, text: str) -> None:
        for word in text.split():
            await self.frame(" " + word, mouth=0.5)
        for _ in range(3):
            await self.frame(mouth=0.4)  # the voice goes on a little after the words


def of(brain: Brain, cls) -> list:
    return [e for e in brain.published if isinstance(e, cls)]


async def test_a_translated_commitment_fires_no_tool_call_by_default(tmp_path):
    brain = make_brain(tmp_path)
    s = Script(brain)
    await s.visitor_says(10)
    await s.translation_says(COMMITMENT)
    await s.event(PassageEnded())
    await s.event(LoopStopped())
    assert of(brain, IntentDetected) == [] and of(brain, ToolCallSent) == []
    (passage,) = of(brain, PassageTranslated)
    assert passage.text == COMMITMENT  # it was heard, and translated: just not acted on


async def test_interpret_intents_true_acts_on_the_translation(tmp_path):
    brain = make_brain(tmp_path, intents=True)
    s = Script(brain)
    await s.visitor_says(10)
    await s.translation_says(COMMITMENT)
    (intent,) = of(brain, IntentDetected)
    assert intent.intent.action == "pick_up"
    assert len(of(brain, ToolCallSent)) == 1


async def test_the_record_holds_source_speech_and_translation_timing(tmp_path):
    brain = make_brain(tmp_path)
    s = Script(brain)
    await s.frame()
    source_start = await s.visitor_says(12)  # 0.96 s of visitor
    source_end = s.t
    for _ in range(4):  # the model is quiet for 4 frames, then translates
        await s.frame()
    first_audio = s.t + FRAME_S
    await s.translation_says("Where is the station?")
    await s.event(PassageEnded())
    (started,) = of(brain, TranslationStarted)
    assert started.lag_ms == pytest.approx((first_audio - source_start) * 1000, abs=0.2)
    assert started.source_t == pytest.approx(source_start)
    (p,) = of(brain, PassageTranslated)
    assert p.ended_by == "eos" and p.text == "Where is the station?"
    assert p.source_start_t == pytest.approx(source_start)
    assert p.source_end_t == pytest.approx(source_end)
    assert p.first_audio_t == pytest.approx(first_audio) == p.first_text_t
    assert p.lag_ms == started.lag_ms
    line = p.to_dict()  # the record line
    assert line["kind"] == "translation" and line["lag_ms"] == p.lag_ms


async def test_the_face_shows_who_speaks_and_the_caption_then_lets_it_go(tmp_path):
    brain = make_brain(tmp_path, caption_hold_s=1.0)
    s = Script(brain)
    ev = await s.frame(visitor=True)
    await s.event(UserSpeechStarted(probability=0.9))
    assert brain.face_state(ev).to_dict()["speaker"] == Speaker.VISITOR.value
    ev = await s.frame(" Where", mouth=0.5, visitor=True)
    state = brain.face_state(ev).to_dict()
    assert (state["speaker"], state["caption"]) == ("both", "Where")
    await s.event(UserSpeechEnded(probability=0.1, silence_ms=80.0))
    ev = await s.frame(" is", mouth=0.5)
    assert brain.face_state(ev).to_dict()["speaker"] == "interpreter"
    await s.event(PassageEnded())
    ev = await s.frame()
    assert brain.face_state(ev).to_dict()["caption"] == "Where is"  # held after the passage ...
    for _ in range(14):  # ... for caption_hold_s (1 s); the voice's hangover ends too
        ev = await s.frame()
    state = brain.face_state(ev).to_dict()
    assert (state["caption"], state["speaker"]) == ("", "nobody")


async def test_a_model_that_never_says_eos_ends_passages_on_quiet(tmp_path):
    brain = make_brain(tmp_path, passage_gap_s=0.5)
    s = Script(brain)
    await s.visitor_says(5)
    await s.translation_says("Hello")
    for _ in range(10):
        await s.frame()
    (p,) = of(brain, PassageTranslated)
    assert (p.ended_by, p.text) == ("quiet", "Hello")
    await s.visitor_says(5)  # the next passage is a new one
    await s.translation_says("Thanks")
    await s.event(LoopStopped())
    assert [(x.passage, x.text, x.ended_by) for x in of(brain, PassageTranslated)] == [
        (1, "Hello", "quiet"),
        (2, "Thanks", "session"),
    ]


async def test_long_captions_keep_the_newest_words(tmp_path):
    brain = make_brain(tmp_path, caption_chars=20)
    s = Script(brain)
    await s.visitor_says(2)
    for word in "one two three four five six seven eight nine".split():
        ev = await s.frame(" " + word, mouth=0.5)
    caption = brain.face_state(ev).to_dict()["caption"]
    assert caption.endswith("eight nine") and len(caption) <= 21 and caption.startswith("…")


async def test_a_passage_that_never_ends_stays_bounded(tmp_path):
    brain = make_brain(tmp_path)
    s = Script(brain)
    await s.visitor_says(1)
    for _ in range(3000):  # a model that babbles and never ends the passage
        await s.frame(" babble", mouth=0.5)
    await s.event(LoopStopped())
    (p,) = of(brain, PassageTranslated)
    assert len(p.text) <= MAX_PASSAGE_CHARS and p.cut_chars == 3000 * 7 - MAX_PASSAGE_CHARS
    assert p.ended_by == "session"


def test_converse_mode_has_no_interpreter_keys(tmp_path):
    cfg = load_config()
    assert cfg.mode == "converse" and cfg.interpreting is None


def test_interpret_mode_runs_hibiki_zero_unless_a_checkpoint_is_given():
    assert load_config(overrides={"mode": "interpret"}).voice.torch.hf_repo == HIBIKI_ZERO_REPO
    given = {"mode": "interpret", "voice.torch.hf_repo": "/models/hibiki"}
    assert load_config(overrides=given).voice.torch.hf_repo == "/models/hibiki"
    assert load_config().voice.torch.hf_repo != HIBIKI_ZERO_REPO


def test_sequence_markers_are_never_text():
    class Pieces:
        def id_to_piece(self, i: int) -> str:
            return {1: "<s>", 2: "</s>", 7: "\u2581bonjour"}[i]

    assert [piece_text(Pieces(), i) for i in (0, 1, 2, 3, 7)] == [None] * 4 + [" bonjour"]
