"""The transcript worker: real words from real speech (pocketsphinx on espeak-ng speech), on
the mic clock, off the fast loop (bounded, drops counted), in a child process when live."""

from __future__ import annotations

import time

import numpy as np
import pytest

from track2_voice.audio.devices import FileSource, frames_of, write_wav
from track2_voice.backends.replay import ReplayBackend
from track2_voice.config import TranscriptConfig, VoiceConfig
from track2_voice.devtools.wer import wer
from track2_voice.events import LoopStopped, UserWord
from track2_voice.frames import FRAME_SECONDS
from track2_voice.loop import FastLoop
from track2_voice.transcript.child import ChildTranscript
from track2_voice.transcript.pocketsphinx_backend import PocketsphinxRecognizer
from track2_voice.transcript.worker import MicClock, TranscriptWorker

SENTENCES = ["one two three four five", "turn on the light", "stop"]
PS = TranscriptConfig(backend="pocketsphinx")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """espeak-ng's voice saying SENTENCES, each after half a second of silence."""
    from track2_voice.devtools.espeak_truth import EspeakTruth

    e = EspeakTruth(rate_wpm=130)
    gap = np.zeros(12_000, np.float32)
    parts = []
    for s in SENTENCES:
        parts += [gap, e.speak(s).pcm]
    return np.concatenate([*parts, gap, gap])


def hear(worker: TranscriptWorker, pcm: np.ndarray, first_index: int = 0, pace_s: float = 0.0):
    for i, f in enumerate(frames_of(pcm)):
        worker.hear(first_index + i, time.monotonic(), f)
        if pace_s:
            time.sleep(pace_s)
    worker.flush()


def test_pocketsphinx_hears_real_words_with_partials_on_the_mic_clock(speech):
    got: list[UserWord] = []
    w = TranscriptWorker(got.append, PocketsphinxRecognizer(PS.pocketsphinx), inline=True)
    hear(w, speech)
    w.close()
    final = [u for u in got if u.final]
    text = " ".join(u.text for u in final)
    assert {"three", "stop"} <= set(text.split()), text
    # espeak-ng is hard for its en-us model (docs/transcript.md has the figures); hearing
    # nothing would score 1.0
    assert wer(" ".join(SENTENCES), text) < 0.9, text
    assert any(not u.final for u in got), "no partial words"
    assert all(u.source == "pocketsphinx" for u in got)
    duration = len(speech) / 24_000
    assert all(0.4 <= u.start < u.end <= duration for u in final), final
    assert [u.start for u in final] == sorted(u.start for u in final)
    # the first word starts after the first half second of silence, near the first speech
    assert final[0].start < 1.2


def test_frames_the_worker_never_got_keep_the_mic_clock(speech):
    """Frames 0..99 went elsewhere: the words of frames 100.. are 8 s later on the mic clock."""
    a: list[UserWord] = []
    b: list[UserWord] = []
    for got, first in ((a, 0), (b, 100)):
        w = TranscriptWorker(got.append, PocketsphinxRecognizer(PS.pocketsphinx), inline=True)
        hear(w, speech, first_index=first)
        w.close()
    fa, fb = [u for u in a if u.final], [u for u in b if u.final]
    assert [u.text for u in fa] == [u.text for u in fb]
    assert all(abs(y.start - x.start - 100 * FRAME_SECONDS) < 1e-6 for x, y in zip(fa, fb))


def test_mic_clock_maps_each_stretch_after_a_gap():
    c = MicClock()
    for i in (0, 1, 2, 10, 11):  # frames 3..9 dropped
        c.frame(i, FRAME_SECONDS)
    assert c.mic(0.1) == pytest.approx(0.1)
    assert c.mic(3 * FRAME_SECONDS + 0.01) == pytest.approx(10 * FRAME_SECONDS + 0.01)


def test_a_worker_that_cannot_keep_up_drops_the_oldest_frames_and_counts_them(speech):
    got: list[UserWord] = []
    w = TranscriptWorker(got.append, PocketsphinxRecognizer(PS.pocketsphinx), maxsize=4)
    t0 = time.perf_counter()
    frames = frames_of(speech)
    for i, f in enumerate(frames):  # all at once: far faster than the recogniser hears
        w.hear(i, time.monotonic(), f)
    fed_ms = (time.perf_counter() - t0) * 1000
    w.flush()
    w.close()
    assert w.dropped > 0
    assert fed_ms / len(frames) < 1.0  # feeding never waited on the recogniser


def test_live_input_is_heard_in_a_child_process_with_the_same_words(speech):
    inline: list[UserWord] = []
    w = TranscriptWorker(inline.append, PocketsphinxRecognizer(PS.pocketsphinx), inline=True)
    hear(w, speech)
    w.close()
    live: list[UserWord] = []
    w = ChildTranscript(live.append, "pocketsphinx", PS.model_dump_json())
    hear(w, speech, pace_s=0.04)  # half the real pace: the child keeps up
    w.close()
    assert w._proc.poll() is not None
    assert [(u.text, u.start) for u in live if u.final] == [
        (u.text, u.start) for u in inline if u.final
    ]
    assert w.dropped == 0


def test_the_fast_loop_feeds_the_worker_and_reports_its_words(speech, tmp_path):
    wav = tmp_path / "user.wav"
    write_wav(wav, speech)
    events: list = []

    class Sink:
        def publish(self, ev):
            events.append(ev)

        def drops(self):
            return {}

    cfg = VoiceConfig()
    w = TranscriptWorker(events.append, PocketsphinxRecognizer(PS.pocketsphinx), inline=True)
    loop = FastLoop(ReplayBackend(), FileSource(wav), events=Sink(), cfg=cfg,
                    transcript=w)  # fmt: skip
    loop.backend.start()
    loop.run()
    loop.close()
    # the recogniser's words (the demo scene also scripts the user's side, source "scene")
    words = [e for e in events if isinstance(e, UserWord) and e.final and e.source != "scene"]
    assert "stop" in [u.text for u in words]
    stopped = [e for e in events if isinstance(e, LoopStopped)][0]
    assert stopped.extra["transcript_words"] == len(words)
    assert stopped.extra["transcript_dropped"] == 0
    # every word came before the loop said it stopped
    assert events.index(stopped) > max(events.index(u) for u in words)
