"""Gaze: a fake camera plays a real face photo (left, gone, right, gone); the pupils follow.

Mirror convention (docs/face.md): the camera sees the world from the face's side, so a person at
the LEFT of the camera image stands at the RIGHT of the screen as that person looks at it, and
the pupils move to the screen's right (positive pupilX).
"""

from __future__ import annotations

import pytest

from tests.conftest import require_module
from tests.face_support import Streamer, launch, require_chromium, start_server, write_y4m

pytestmark = pytest.mark.browser

FACE_S = 2.0  # seconds of face in one place
GONE_S = 3.0  # seconds of no face: long enough to drift back (js/gaze.js GAZE_LOST_MS, GAZE_DRIFT_TAU_MS)


def test_pupils_follow_a_face_left_then_right_and_drift_back(tmp_path) -> None:
    require_chromium()
    require_module("skimage", "pip install scikit-image")
    from playwright.sync_api import sync_playwright

    video = write_y4m(
        tmp_path / "camera.y4m",
        [(0.0, FACE_S), (None, GONE_S), (1.0, FACE_S), (None, GONE_S)],
    )
    server = start_server(gaze=True)
    stream = Streamer(server)
    try:
        with sync_playwright() as pw:
            browser = launch(pw, [f"--use-file-for-fake-video-capture={video}"])
            page = browser.new_page(viewport={"width": 360, "height": 480})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.wait_for_function(
                "window.face.state.gaze.active || window.face.state.gaze.error", timeout=20000
            )
            assert page.evaluate("window.face.state.gaze.error") is None
            # face at the image's left -> pupils to the screen's right
            page.wait_for_function(
                "window.face.state.gaze.seen && window.face.state.gaze.faceX < 0.4 "
                "&& window.face.state.pupilX > 0.3",
                timeout=15000,
            )
            # no face -> the gaze drifts back to the middle
            page.wait_for_function(
                "!window.face.state.gaze.seen && Math.abs(window.face.state.gaze.x) < 0.2",
                timeout=15000,
            )
            # face at the image's right -> pupils to the screen's left
            page.wait_for_function(
                "window.face.state.gaze.seen && window.face.state.gaze.faceX > 0.6 "
                "&& window.face.state.pupilX < -0.3",
                timeout=15000,
            )
            assert errors == []
            browser.close()
    finally:
        stream.close()
        server.stop()
