"""The phone's view of the user reaches the creature (for a robot's head): a fake camera plays a
real face photo at the image's left, then nothing; the face server hears the gaze from a page
opened with the access token, and nothing from a page without it (a viewer must not steer)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import require_module
from tests.face_support import Streamer, launch, require_chromium, start_server, write_y4m

pytestmark = pytest.mark.browser
TOKEN = "gaze-test-token-123"


def test_a_page_with_the_token_tells_the_server_where_the_face_is(tmp_path) -> None:
    require_chromium()
    require_module("skimage", "pip install scikit-image")
    from playwright.sync_api import sync_playwright

    video = write_y4m(tmp_path / "camera.y4m", [(0.0, 3.0), (None, 4.0)])
    server = start_server(gaze=True)
    heard: list[tuple[float, float] | None] = []
    server.gaze_token = TOKEN
    server.on_gaze = heard.append
    stream = Streamer(server)
    try:
        with sync_playwright() as pw:
            browser = launch(pw, [f"--use-file-for-fake-video-capture={video}"])
            viewer = browser.new_page(viewport={"width": 360, "height": 480})
            viewer.goto(f"http://127.0.0.1:{server.port}/")  # no token: sees, cannot tell
            viewer.wait_for_function("window.face.state.gaze.seen", timeout=20000)
            time.sleep(0.5)
            assert heard == []
            viewer.close()
            page = browser.new_page(viewport={"width": 360, "height": 480})
            page.goto(f"http://127.0.0.1:{server.port}/?token={TOKEN}")
            deadline = time.monotonic() + 20
            # the face at the image's left: the user's right on the screen, x > 0
            while not any(g is not None and g[0] > 0.3 for g in heard):
                assert time.monotonic() < deadline, heard[-5:]
                page.wait_for_timeout(100)
            while heard[-1] is not None:  # the face gone: one "no face"
                assert time.monotonic() < deadline + 10, heard[-5:]
                page.wait_for_timeout(100)
            times = len(heard)
            page.wait_for_timeout(1000)
            assert len(heard) == times  # nothing more while no face is seen
            browser.close()
    finally:
        stream.close()
        server.stop()
