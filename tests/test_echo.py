"""Echo cancellation in a simulated room: the creature's greeting plays through a speaker into
the mic (image-source room impulse response, device latency), a user speaks over it; with the
canceller the VAD fires on the user only, without it the VAD fires on the creature's own voice.
Real parts throughout: the fast loop, the replay backend, Silero VAD, WebRTC's AEC3."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import espeak_wav, require_module
from track2_voice.audio.devices import AudioSource, load_audio
from track2_voice.audio.echo import DelayEstimator, EchoCancelledSource, EchoCanceller
from track2_voice.backends.replay import ReplayBackend
from track2_voice.config import EchoConfig, VoiceConfig
from track2_voice.devtools.room import ROOMS, SimulatedRoom, impulse_response
from track2_voice.events import UserSpeechStarted
from track2_voice.frames import FRAME_MS, FRAME_SECONDS, SAMPLE_RATE
from track2_voice.loop import FastLoop

FRAMES = 150  # 12 s: the greeting, the user, the answer, two more lines
USER_AT_S = 1.8  # during the creature's first line: double talk


class Events:
    def __init__(self) -> None:
        self.events = []

    def publish(self, e) -> None:
        self.events.append(e)

    def drops(self) -> dict:
        return {}


class Tap(AudioSource):
    """Keeps every frame the loop reads (what the VAD and the model heard)."""

    def __init__(self, inner: AudioSource) -> None:
        self.inner, self.realtime, self.frames = inner, inner.realtime, []

    def read(self):
        f = self.inner.read()
        if f is not None:
            self.frames.append(f.pcm.copy())
        return f


@pytest.fixture(scope="module")
def user_speech(tmp_path_factory):
    d = tmp_path_factory.mktemp("echo")
    pcm = load_audio(espeak_wav(d / "user.wav", "Could you please pick up the red cup for me?"))
    return pcm * 0.5


def run_room(user_speech, aec: bool, room_index: int = 1):
    require_module("pyroomacoustics")
    spec = ROOMS[room_index]
    room = SimulatedRoom(
        impulse_response(spec),
        FRAMES,
        user=[(USER_AT_S, user_speech)],
        device_delay_ms=spec.device_delay_ms,
    )
    # the hint a sound card gives: its output + input latency and the frame (voice_session.py)
    hint = FRAME_MS + spec.device_delay_ms
    canceller = EchoCanceller(EchoConfig(), device_delay_ms=hint) if aec else None
    if canceller is not None:
        room.on_render = canceller.far
    mic = EchoCancelledSource(room.mic, canceller) if canceller else room.mic
    tap = Tap(mic)
    events = Events()
    loop = FastLoop(ReplayBackend("greeting"), tap, room.speaker, events, VoiceConfig())
    try:
        loop.run()
    finally:
        loop.close()
    starts = [e.index * FRAME_SECONDS for e in events.events if isinstance(e, UserSpeechStarted)]
    return room, tap, starts, canceller


def _in_user_speech(room, t: float) -> bool:
    return any(a <= t <= b + 0.3 for a, b in room.user_spans)


@pytest.mark.parametrize("room_index", range(len(ROOMS)), ids=[r.name for r in ROOMS])
def test_the_creature_does_not_hear_itself_but_hears_the_user(user_speech, room_index):
    room, tap, starts, canceller = run_room(user_speech, aec=True, room_index=room_index)
    false = [t for t in starts if not _in_user_speech(room, t)]
    assert not false, f"VAD fired on the creature's own voice at {false} s"
    assert starts and _in_user_speech(room, starts[0])  # double talk: the user is heard
    # ERLE where only the creature talks (after 2 s of adaptation, away from the user)
    single = [
        j
        for j in range(25, FRAMES)
        if np.sqrt(np.mean(room.echo_frame(j) ** 2)) > 1e-3
        and not np.any(room.user_frame(j))
        and not _in_user_speech(room, j * FRAME_SECONDS)
    ]
    assert len(single) > 30
    echo = sum(float(np.sum(room.mic_frame(j) ** 2)) for j in single)
    left = sum(float(np.sum(tap.frames[j] ** 2)) for j in single)
    erle_db = 10 * np.log10(echo / left)
    assert erle_db >= 25, erle_db
    stats = canceller.stats()
    assert stats["frames"] == FRAMES
    true_ms = ROOMS[room_index].device_delay_ms  # + the acoustic path, a few ms
    assert true_ms <= stats["delay_estimate_ms"] <= true_ms + 5


def test_without_the_canceller_the_vad_fires_on_the_creatures_voice(user_speech):
    room, _, starts, _ = run_room(user_speech, aec=False)
    assert any(not _in_user_speech(room, t) for t in starts)


def test_the_echo_delay_is_measured():
    rng = np.random.default_rng(3)
    far = (rng.standard_normal(SAMPLE_RATE * 2) * 0.1).astype(np.float32)
    delay = int(0.045 * SAMPLE_RATE)
    near = np.concatenate([np.zeros(delay, np.float32), far[:-delay] * 0.3])
    est = DelayEstimator()
    for i in range(0, far.size, 1920):
        est.add(far[i : i + 1920], near[i : i + 1920])
    got = est.estimate()
    assert got is not None and abs(got.delay_ms - 45.0) <= 1.0
    quiet = DelayEstimator()
    quiet.add(np.zeros(1920, np.float32), near[:1920])
    assert quiet.estimate() is None  # no far end: nothing to measure
