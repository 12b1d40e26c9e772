"""Replay: plays a recorded scene as if it were Moshi (audio + inner-monologue pieces).

Runs anywhere, with no weights: demos, tests, and robots whose builders have no GPU yet.
"""

from __future__ import annotations

import numpy as np

from track2_voice.audio.scene import Scene, load_scene
from track2_voice.backends.base import Backend, StepResult
from track2_voice.events import SceneEnd, SceneLine, UserWord
from track2_voice.frames import FRAME_SECONDS, silence

USER_HOLD_S = 6.0  # past the timeout, wait at most this long for a user who is still talking


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, scene: str | Scene = "greeting") -> None:
        self.scene = scene if isinstance(scene, Scene) else load_scene(scene)
        self._detector = None
        self.reset()

    def set_user_speech(self, detector) -> None:
        self._detector = detector

    def reset(self) -> None:
        self._line = 0
        self._pos = -1  # -1: waiting before the line; >= 0: frame within the line
        self._waited = 0
        self._utterances_at_wait = self._utterances()
        self._tail = 0
        self._done = False
        self._frames = 0  # frames stepped: the mic clock of scripted user words

    def _utterances(self) -> int:
        return self._detector.utterances if self._detector is not None else 0

    def _user_speaking(self) -> bool:
        return bool(self._detector is not None and self._detector.speaking)

    @property
    def finished(self) -> bool:
        return self._done

    def _ready(self) -> tuple[bool, str]:
        spec = self.scene.lines[self._line].spec
        waited_s = self._waited * FRAME_SECONDS
        if spec.user:  # the scripted user speaks first, then the line waits as usual
            waited_s -= len(spec.user.split()) * spec.user_word_s
            if waited_s < 0:
                return False, "user"
        if not spec.after_user:
            return waited_s >= spec.after_s, "time"
        heard = self._utterances() > self._utterances_at_wait and not self._user_speaking()
        if heard:
            return True, "user"
        if waited_s >= spec.timeout_s and not self._user_speaking():
            return True, "timeout"
        return waited_s >= spec.timeout_s + USER_HOLD_S, "timeout"

    def step(self, pcm: np.ndarray) -> StepResult:
        lines = self.scene.lines
        if self._line >= len(lines):
            self._tail += 1
            if self._tail * FRAME_SECONDS >= self.scene.spec.tail_s and not self._done:
                self._done = True
                return StepResult(silence(), None, [SceneEnd(scene=self.scene.spec.name)])
            return StepResult(silence())
        line = lines[self._line]
        events: list = []
        self._frames += 1
        if self._pos < 0:
            events.extend(self._user_words(line.spec))
            self._waited += 1
            ready, why = self._ready()
            if not ready:
                return StepResult(silence(), None, events)
            self._pos = 0
            events.append(SceneLine(line=self._line, text=line.spec.text, start=why))
        out = line.frames[self._pos]
        text = line.pieces.get(self._pos)
        self._pos += 1
        if self._pos >= len(line.frames):
            self._line += 1
            self._pos = -1
            self._waited = 0
            self._utterances_at_wait = self._utterances()
        return StepResult(out, text, events)

    def _user_words(self, spec) -> list[UserWord]:
        """The scripted user's words due in this frame (a transcript of the user replaces them:
        docs/slow_loop.md, "Dialogue")."""
        if not spec.user:
            return []
        words = spec.user.split()
        out = []
        for k, w in enumerate(words):
            # published in the frame where the word has been said
            if self._waited == int(round((k + 1) * spec.user_word_s / FRAME_SECONDS)):
                end = (self._frames - 1) * FRAME_SECONDS
                out.append(
                    UserWord(
                        text=w, start=end - spec.user_word_s, end=end, final=True, source="scene"
                    )
                )
        return out
