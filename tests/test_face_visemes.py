"""The face page draws viseme shapes, in a real Chromium fed by the real server: a bilabial
closes the lips, a U or WQ rounds them, an O and an M differ, the expression still shows, pages
without visemes keep the RMS mouth, unknown keys are ignored. Screenshots of each viseme are
written to docs/img/visemes/ (for the docs) when CREATURE_SCREENSHOTS=1, else to artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from face import FaceConfig, FaceServer
from orchestrator.data_files import load_presets, load_visemes
from tests.face_support import ARTIFACTS, Streamer, chromium, face_page

pytestmark = pytest.mark.browser
VISEMES = load_visemes()
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "img" / "visemes" if os.environ.get("CREATURE_SCREENSHOTS") else ARTIFACTS
LOUD = 0.8  # the RMS openness streamed with each shape (speech at a normal level)
# the drawn mouth, read off the page's state and the SVG path (a test-side probe)
DRAWN = """() => {
  const s = window.face.state, box = document.getElementById('mouth-inner').getBBox();
  return {viseme: s.viseme, open: s.mouthOpenPx, width: s.mouthWidthPx,
          h: box.height, w: box.width, d: document.getElementById('mouth-inner').getAttribute('d')};
}"""


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture()
def server():
    s = FaceServer(
        FaceConfig(host="127.0.0.1", port=0, gaze=False),
        load_presets(),
        visemes=VISEMES.page_data(),
    ).start_in_thread()
    yield s
    s.stop()


@pytest.fixture()
def stream(server):
    st = Streamer(server, {"emotion": "neutral", "mouth": 0.0, "speaking": False})
    yield st
    st.close()


@pytest.fixture()
def page(browser, server, stream):
    yield from face_page(browser, server)


def _shape(page, stream, name: str, index: int, **extra) -> dict:
    """Stream one viseme at full weight until the page has drawn it steadily; what it drew."""
    stream.update(mouth=LOUD, speaking=True, visemes={name: 1.0}, index=index, **extra)
    page.wait_for_function(f"window.face.state.viseme === {name!r}")
    # the shape ramps over one frame: wait until two reads 100 ms apart agree
    prev = None
    for _ in range(50):
        now = page.evaluate(DRAWN)
        if (
            prev is not None
            and abs(now["h"] - prev["h"]) < 0.05
            and abs(now["w"] - prev["w"]) < 0.05
        ):
            return now
        prev = now
        page.wait_for_timeout(100)
    raise AssertionError(f"the {name} shape never settled: {now}")


def test_a_bilabial_closes_the_lips_and_an_open_vowel_opens_them(page, stream) -> None:
    aa = _shape(page, stream, "AA", 1)
    mbp = _shape(page, stream, "MBP", 2)
    assert aa["open"] > 20 and aa["h"] > 25
    assert mbp["open"] < 0.5 and mbp["h"] < 3  # lips together although the voice is loud


def test_u_and_wq_round_the_lips_and_differ_from_a_spread_i(page, stream) -> None:
    i = _shape(page, stream, "I", 1)
    for name in ("U", "WQ"):
        r = _shape(page, stream, name, 2)
        assert r["w"] < 0.6 * i["w"], (name, r, i)  # pursed: much narrower than a spread I
        assert r["open"] > 3 and r["h"] / r["w"] > 0.3, (name, r)  # an opening, rounded
        assert " C" in r["d"]  # drawn with the viseme renderer's curves


def test_an_o_frame_and_an_m_frame_have_different_geometry(page, stream) -> None:
    o = _shape(page, stream, "O", 1)
    m = _shape(page, stream, "MBP", 2)
    assert o["d"] != m["d"] and o["h"] > m["h"] + 15 and o["w"] < m["w"]


def test_a_smiling_o_still_smiles(page, stream) -> None:
    neutral = _shape(page, stream, "O", 1)
    stream.update(emotion="happy")
    page.wait_for_function("document.documentElement.dataset.emotion === 'happy'")
    page.wait_for_timeout(1200)  # the expression eases in (220 ms time constant)
    happy = page.evaluate(DRAWN)
    assert happy["viseme"] == "O"
    assert happy["d"] != neutral["d"] and happy["w"] < 0.8 * 2 * 46 * 1.2  # still an O


def test_without_visemes_the_page_keeps_the_rms_mouth_and_ignores_unknown_keys(
    page, stream
) -> None:
    _shape(page, stream, "MBP", 1)
    state = {"emotion": "neutral", "mouth": LOUD, "speaking": True, "future_key": {"x": 1}}
    stream.state = state  # an older server: no visemes key at all, plus a key nobody knows
    page.wait_for_function("window.face.state.viseme === null")
    page.wait_for_timeout(300)
    rms = page.evaluate(DRAWN)
    assert rms["open"] > 20 and " Q" in rms["d"]  # the RMS mouth, open with the voice
    assert page.evaluate("window.face.state.malformed") == 0


def test_a_malformed_visemes_value_changes_nothing(page, stream, server) -> None:
    before = _shape(page, stream, "AA", 1)
    stream.close()
    n = page.evaluate("window.face.state.malformed")
    bad = [{"MBP": "x"}, [1, 2], {"MBP": -1}]
    for k, value in enumerate(bad):  # one at a time: each client's mailbox keeps the newest
        server.publish({"emotion": "neutral", "mouth": LOUD, "speaking": True, "visemes": value})
        page.wait_for_function(f"window.face.state.malformed >= {n + k + 1}")
    assert page.evaluate("window.face.state.viseme") == "AA"
    assert page.evaluate(DRAWN)["d"] == before["d"]


def test_screenshots_of_every_viseme(page, stream) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    heights = {}
    for k, name in enumerate(VISEMES.names):
        drawn = _shape(page, stream, name, k)
        heights[name] = drawn["h"]
        r = page.evaluate(
            "(() => { const b = document.getElementById('head').getBoundingClientRect(); return {x: b.x, y: b.y, width: b.width, height: b.height}; })()"
        )
        page.screenshot(path=str(SHOTS / f"{name}.png"), clip=r)
        assert (SHOTS / f"{name}.png").stat().st_size > 1000
    assert (
        heights["rest"] < 3 and heights["MBP"] < 3 and heights["AA"] > heights["E"] > heights["I"]
    )
