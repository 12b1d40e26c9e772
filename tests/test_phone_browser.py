"""The phone page in real Chromium with a fake microphone playing real speech (espeak-ng).

The creature hears it (the real fast loop, ClockSource and VAD: user_speech_started), answers
through the page (replay backend), and the page measures its own mouth/audio lag.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from face.config import FaceConfig
from face.phone.phone_config import PhoneConfig
from orchestrator.runtime.phone_link import build_server, prepare_web
from tests.conftest import ROOT, require, require_module, require_tool
from tests.phone_browser import CHROMIUM, chromium_args, chromium_available, make_mic_wav
from tests.slow_support import wait_until
from track2_voice.audio.devices import ClockSource
from track2_voice.frames import FRAME_SAMPLES, FRAME_SECONDS

# The mouth is in sync when it is well inside half a frame of the sound it belongs to: a mouth
# applied on arrival instead of on the playback clock leads by the jitter buffer (2 frames, 160 ms)
# and more. The +-20 ms target is the benchmark's (benchmarks/av_sync.py, over the whole scene);
# this short run in a headless Chromium on a loaded machine holds the looser bound.
SYNC_BOUND_MS = FRAME_SECONDS * 1000 / 2
SMOOTHING_LAG_MS = 20.0  # raw_lag_ms also holds the lip-sync release smoothing's own lag
URL_LINE = re.compile(r"face: open (\S+)")


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory) -> Path:
    require_tool("espeak-ng")
    require_tool("sox")
    return make_mic_wav(tmp_path_factory.mktemp("mic") / "speech48.wav")


@pytest.fixture(scope="module")
def browser(mic_wav):
    require(f"Chromium at {CHROMIUM}", chromium_available())
    require_module("playwright.sync_api", "pip install playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(mic_wav))
        yield b
        b.close()


def wait_for(page, js: str, timeout_s: float = 15.0):
    page.wait_for_function(js, timeout=timeout_s * 1000)


def test_the_creature_hears_the_phone_and_answers_in_sync(browser, tmp_path):
    """`creature serve` end to end: open the printed URL, tap, talk; the scene plays out."""
    record = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "serve", "--face-port", "0", "--once"]
        + ["--record", str(record), "--set", f"phone.state_dir={tmp_path}"]
        + ["--set", "face.gaze=false"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            m = URL_LINE.search(line)
            if m:
                url = m.group(1)
                break
        assert url and url.startswith("https://") and "token=" in url, "".join(lines)
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        page = browser.new_page()
        page.goto(url)
        page.mouse.click(200, 200)  # the gesture browsers need for the mic and for sound
        wait_for(page, "window.phoneAudio.state.ws === 'open'")
        wait_for(page, "window.phoneAudio.state.micMessages > 50")
        proc.wait(timeout=60)  # --once: the scene ended (it waited for the user's words)
        report = page.evaluate("window.avsync.report()")
        st = page.evaluate("window.phoneAudio.state")
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(lines)
    events = [json.loads(x) for x in record.read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert "user_speech_started" in kinds  # the creature heard the phone's mic
    assert kinds.count("scene_line") >= 3
    assert st["played"] > 40 and st["error"] is None
    print("A/V sync:", json.dumps(report))
    assert report["corr"] > 0.8, report  # the page played speech and the mouth moved with it
    assert abs(report["lag_ms"]) <= SYNC_BOUND_MS, report
    assert abs(report["raw_lag_ms"]) <= SYNC_BOUND_MS + SMOOTHING_LAG_MS, report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Voice:
    """A stand-in for the fast loop's output side: a 80 ms tone burst every frame, real time."""

    def __init__(self, phone) -> None:
        self.phone, self.stop = phone, threading.Event()
        t = np.arange(FRAME_SAMPLES) / 24000
        self.pcm = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        i = 0
        while not self.stop.wait(FRAME_SECONDS):
            self.phone.send_frame(i, time.monotonic(), 0.5, self.pcm)
            i += 1


def test_wrong_token_is_refused_and_the_page_survives_a_restart(browser, tmp_path):
    source = ClockSource()
    face = FaceConfig(host="127.0.0.1", port=_free_port(), gaze=False)
    phone_cfg = PhoneConfig(state_dir=str(tmp_path))
    setup = prepare_web(face, phone_cfg)
    server, phone = build_server(setup, phone_cfg, source)
    server.start_in_thread()
    voice = _Voice(phone)
    base = f"https://127.0.0.1:{server.port}/"
    try:
        for query in ("?token=not-the-token", ""):
            bad = browser.new_page()
            bad.goto(base + query)
            bad.mouse.click(100, 100)
            wait_for(bad, "window.phoneAudio.state.closeCode === 4401")
            assert "token" in bad.evaluate("window.phoneAudio.state.error")
            bad.close()
        assert phone.refused == 2 and phone.stats()["samples_in"] == 0

        page = browser.new_page()
        page.goto(base + f"?token={setup.token}")
        page.mouse.click(100, 100)
        wait_for(
            page, "window.phoneAudio.state.framesIn > 5 && window.phoneAudio.state.micMessages > 5"
        )
        server.stop()
        wait_for(page, "window.phoneAudio.state.ws !== 'open'")
        before = page.evaluate("window.phoneAudio.state.framesIn")
        server.start_in_thread()  # same port, same token
        wait_for(
            page,
            f"window.phoneAudio.state.ws === 'open' && window.phoneAudio.state.framesIn > {before + 5}",
        )
        wait_for(page, "window.face.state.server === 'open'")
        samples = phone.stats()["samples_in"]
        wait_for(page, "window.phoneAudio.state.micMessages > 0")
        wait_until(  # the mic flows again
            lambda: phone.stats()["samples_in"] > samples, 15.0, "mic samples after the restart"
        )
        page.close()
    finally:
        voice.stop.set()
        server.stop()
