"""Shared helpers for the face tests: a real server, a real Chromium, a fake camera file.

The camera is the one fake here (no webcam on a CI machine): Chromium plays a .y4m video,
written with numpy, of a real face photo (scikit-image's astronaut) through its fake-capture
device.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from websockets.sync.client import connect

from face import FaceConfig, FaceServer
from orchestrator.data_files import load_presets
from tests.conftest import require, require_module

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
FRAME_S = 0.08  # the fast loop's frame period: states are streamed at this rate
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "face"


def require_chromium() -> None:
    """A Chromium and Playwright to drive it (see ``tests.conftest.require``)."""
    require(
        f"chromium at {CHROMIUM}", Path(CHROMIUM).exists() or shutil.which("chromium") is not None
    )
    require_module("playwright.sync_api", "pip install playwright")


def launch(pw, extra_args: list[str] | None = None):
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    return pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS + (extra_args or []))


def chromium() -> Iterator[Any]:
    """A launched Chromium, closed after use: the body of a module's ``browser`` fixture
    (``yield from chromium()``)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


def face_page(browser: Any, server: FaceServer) -> Iterator[Any]:
    """The face page on a phone-sized viewport, once it has its presets and a first state;
    after use, closed, and no page error may have happened (the body of a ``page`` fixture:
    ``yield from face_page(browser, server)``)."""
    pg = browser.new_page(viewport={"width": 360, "height": 480})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"http://127.0.0.1:{server.port}/?gaze=0")
    pg.wait_for_function(
        "window.face && window.face.state.presetsLoaded && window.face.state.messages > 0"
    )
    yield pg
    pg.close()
    assert errors == [], f"page errors: {errors}"


def start_server(port: int = 0, gaze: bool = True) -> FaceServer:
    return FaceServer(
        FaceConfig(host="127.0.0.1", port=port, gaze=gaze), load_presets()
    ).start_in_thread()


class Streamer:
    """Publishes ``state`` every frame from its own thread, like the fast loop does."""

    def __init__(self, server: FaceServer, state: dict[str, Any] | None = None) -> None:
        self.server = server
        self.state: dict[str, Any] = state or {
            "emotion": "neutral",
            "mouth": 0.0,
            "speaking": False,
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.server.publish(dict(self.state))
            next_t += FRAME_S
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def update(self, **kw: Any) -> None:
        self.state = {**self.state, **kw}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# -- a fake camera: y4m video of a real face ---------------------------------------------------
def _yuv420(rgb: np.ndarray) -> list[np.ndarray]:
    img = rgb.astype(np.float32)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    def sub(c: np.ndarray) -> np.ndarray:
        return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))

    return [np.clip(p, 0, 255).astype(np.uint8) for p in (y, sub(u), sub(v))]


def camera_frame(pos: float | None, width: int = 320, height: int = 240) -> np.ndarray:
    """A grey frame with the astronaut's face at horizontal position pos (0 left..1 right)."""
    canvas = np.full((height, width, 3), 90, np.uint8)
    if pos is None:
        return canvas
    from skimage import data, transform

    side = height // 2
    face = data.astronaut()[0:260, 120:380]
    face = (transform.resize(face, (side, side), anti_aliasing=True) * 255).astype(np.uint8)
    x0 = int((width - side) * pos)
    y0 = (height - side) // 2
    canvas[y0 : y0 + side, x0 : x0 + side] = face
    return canvas


def write_y4m(path: Path, segments: list[tuple[float | None, float]], fps: int = 10) -> Path:
    """segments: (face position or None for no face, seconds). Chromium loops the file."""
    first = camera_frame(None)
    h, w = first.shape[:2]
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C420jpeg\n" % (w, h, fps))
        for pos, seconds in segments:
            planes = _yuv420(camera_frame(pos, w, h))
            for _ in range(max(1, round(seconds * fps))):
                f.write(b"FRAME\n")
                for p in planes:
                    f.write(p.tobytes())
    return path


def serve_face_states(proc: subprocess.Popen, log: list[str], timeout_s: float = 10.0) -> list:
    """Every face state a ``creature serve`` process streams to a face client, from the URL it
    prints until it goes away (its output so far is kept in ``log``)."""
    url = None
    for line in proc.stdout:
        log.append(line)
        m = re.search(r"face: open (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    assert url, "serve printed no face URL:\n" + "".join(log)
    ws_url = url.split("?")[0].replace("http://", "ws://") + "ws/face"
    states = []
    with connect(ws_url) as ws:
        try:
            while True:
                states.append(json.loads(ws.recv(timeout=timeout_s)))
        except Exception:  # the server went away at the end of the run
            pass
    return states
