"""The face page in a real Chromium, fed by the real server over a real WebSocket.

Screenshots of every emotion are saved under artifacts/face/ for a human to look at.
"""

from __future__ import annotations

import socket

import pytest

from face import FaceServer
from orchestrator.data_files import load_presets
from tests.face_support import ARTIFACTS, FRAME_S, Streamer, chromium, face_page, start_server

pytestmark = pytest.mark.browser

PRESETS = load_presets()
# Record what the page draws on every animation frame (a test-side probe, not page code). `t` is
# the face's own clock (state.frameTime: the frame time the values were drawn for), so rates are
# measured on the clock the mouth ramps on, not on when this probe happened to run.
RECORDER = """() => {
  window.__rec = [];
  const tick = () => {
    const s = window.face.state;
    const box = document.getElementById('mouth-inner').getBBox();
    window.__rec.push({t: s.frameTime, mouth: s.mouth, target: s.mouthTarget,
      h: box.height, eye: s.eyeOpen, nod: s.nod, blinking: s.blinking, listen: s.listenAmount});
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
FRAME_MS = FRAME_S * 1000
SETTLED_MS = 1.5 * FRAME_MS  # a mouth target older than this has been reached (one-frame ramp)
STEADY_SAMPLES = 8  # drawn frames on each settled value before the script moves on
# true once the recorder holds STEADY_SAMPLES frames drawn more than SETTLED_MS after the target
# became `v` (the newest run of samples with that target)
SETTLED_ON = """([v, settledMs, need]) => {
  const rec = window.__rec;
  let i = rec.length - 1;
  while (i >= 0 && rec[i].target === v) i--;
  if (i === rec.length - 1) return false;
  const since = rec[i + 1].t;
  let n = 0;
  for (let k = i + 1; k < rec.length; k++) if (rec[k].t - since > settledMs) n++;
  return n >= need;
}"""
# true once every geometry parameter is within 2 % of its range of the preset
EASED = """([face, ranges]) => Object.entries(face).every(([k, v]) =>
  Math.abs(window.face.state.params[k] - v) < 0.02 * ranges[k])"""
RANGES = {k: p["max"] - p["min"] for k, p in PRESETS["params"].items()}


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture()
def server():
    s = start_server()
    yield s
    s.stop()


@pytest.fixture()
def stream(server: FaceServer):
    st = Streamer(server)
    yield st
    st.close()


@pytest.fixture()
def page(browser, server: FaceServer, stream: Streamer):
    yield from face_page(browser, server)


def _params(page) -> dict:
    return page.evaluate("({...window.face.state.params})")


def _show(page, stream: Streamer, name: str) -> None:
    """Stream emotion `name` and wait until the page has eased all the way to its preset."""
    stream.update(emotion=name)
    page.wait_for_function(f"document.documentElement.dataset.emotion === {name!r}")
    page.wait_for_function(EASED, arg=[PRESETS["emotions"][name]["face"], RANGES], timeout=10000)


def _mouth_height(page) -> float:
    return page.evaluate("document.getElementById('mouth-inner').getBBox().height")


def test_each_emotion_renders_its_preset(page, stream: Streamer) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in PRESETS["emotions"]:
        _show(page, stream, name)
        page.screenshot(path=str(ARTIFACTS / f"emotion-{name}.png"))
    # the geometry really differs: surprise opens the eyes and mouth, sad turns the mouth down
    _show(page, stream, "surprise")
    surprise_h = _mouth_height(page)
    _show(page, stream, "neutral")
    neutral_h = _mouth_height(page)
    assert surprise_h > neutral_h + 10


def test_mouth_tracks_a_scripted_sequence_smoothly(page, stream: Streamer) -> None:
    script = [0.0, 0.3, 0.8, 1.0, 0.5, 0.1, 0.0, 0.6, 0.2, 0.9, 0.0]
    page.evaluate(RECORDER)
    for v in script:  # each value is held until the page has drawn it steadily for a while
        stream.update(mouth=v, speaking=v > 0.05)
        page.wait_for_function(SETTLED_ON, arg=[v, SETTLED_MS, STEADY_SAMPLES], timeout=10000)
    rec = page.evaluate("window.__rec")
    # 1) where the target has been steady for more than one frame, the mouth sits on it
    steady = []
    changed_at = rec[0]["t"]
    for prev, cur in zip(rec, rec[1:]):
        if cur["target"] != prev["target"]:
            changed_at = cur["t"]
        elif cur["t"] - changed_at > SETTLED_MS:
            steady.append(cur)
    assert {round(r["target"], 3) for r in steady} == set(script)
    for r in steady:
        assert abs(r["mouth"] - r["target"]) < 0.01, r
    # 2) the drawn opening grows with the value
    by_value: dict[float, list[float]] = {}
    for r in steady:
        by_value.setdefault(round(r["target"], 3), []).append(r["h"])
    means = [sum(h) / len(h) for _, h in sorted(by_value.items())]
    assert all(b > a for a, b in zip(means, means[1:])), means
    # 3) smooth: on the face's clock, no step is faster than a full 0 -> 1 ramp over one frame
    steps = 0
    for prev, cur in zip(rec, rec[1:]):
        dt = cur["t"] - prev["t"]
        if dt > 0:
            steps += 1
            assert abs(cur["mouth"] - prev["mouth"]) <= dt / FRAME_MS + 1e-6, (prev, cur)
    assert steps > len(script) * STEADY_SAMPLES


def test_blinks_by_itself(page) -> None:
    page.evaluate(RECORDER)
    page.wait_for_function("window.face.state.blinks >= 1", timeout=10000)
    # some blink is drawn with the lids really closed (a frame late on a loaded machine may step
    # over one blink's closed moment, not over every one)
    page.wait_for_function("window.__rec.some((r) => r.blinking && r.eye < 0.2)", timeout=30000)
    page.wait_for_function(  # and they open again
        "!window.face.state.blinking && window.face.state.eyeOpen > 0.5", timeout=5000
    )


def test_listening_shows_backchannel_without_fighting_the_mouth(page, stream: Streamer) -> None:
    base_brow = _params(page)["brow_raise"]
    page.evaluate(RECORDER)
    stream.update(listening=True, speaking=False, mouth=0.0)
    page.wait_for_function("document.documentElement.dataset.listening === 'true'")
    page.wait_for_function("window.face.state.listenAmount > 0.9", timeout=5000)
    page.wait_for_function("window.__rec.some((r) => r.nod > 0.5)", timeout=10000)  # it nodded
    rec = page.evaluate("window.__rec")
    assert all(r["mouth"] == 0.0 for r in rec)  # the mouth stayed as told
    shown_brow = page.evaluate(
        "parseFloat(document.getElementById('brow-l').getAttribute('d').split(',')[1])"
    )
    # while the creature speaks, listening is not shown
    stream.update(speaking=True, mouth=0.5)
    page.wait_for_function("document.documentElement.dataset.listening === 'false'")
    page.wait_for_function("window.face.state.listenAmount < 0.05", timeout=5000)
    assert page.evaluate("window.face.state.nod") == 0
    later_brow = page.evaluate(
        "parseFloat(document.getElementById('brow-l').getAttribute('d').split(',')[1])"
    )
    assert shown_brow < later_brow  # brows were raised (smaller y) while listening
    assert _params(page)["brow_raise"] == pytest.approx(base_brow, abs=0.02)


def test_malformed_messages_change_nothing(page, server: FaceServer, stream: Streamer) -> None:
    stream.close()  # take the stream over: only the messages below reach the page
    good = {"emotion": "sad", "mouth": 0.4, "speaking": True, "future_key": {"x": [1]}}
    server.publish(good)
    page.wait_for_function("window.face.state.emotion === 'sad' && window.face.state.mouth > 0.39")
    snapshot = (
        "(({emotion, mouthTarget, speaking, listening, connected}) => "
        "({emotion, mouthTarget, speaking, listening, connected}))(window.face.state)"
    )
    before = page.evaluate(snapshot)
    bad = [
        "not json",
        "[1, 2, 3]",
        "null",
        "42",
        '{"emotion": 5}',
        '{"mouth": "wide"}',
        '{"mouth": NaN}',
        '{"speaking": "yes", "emotion": "happy"}',
        '{"emotion": "happy", "mouth": null}',
        '{"emotion": "happy", "valence": "high"}',
    ]
    for text in bad:  # one at a time: the server keeps only the latest state
        n = page.evaluate("window.face.state.malformed")
        server.publish_text(text)
        page.wait_for_function(f"window.face.state.malformed > {n}")
        assert page.evaluate(snapshot) == before, text
        m = page.evaluate("window.face.state.messages")
        server.publish(good)  # the loop keeps streaming (a silent link closes the mouth)
        page.wait_for_function(f"window.face.state.messages > {m}")
    # an emotion the page has no preset for keeps the last face; the rest of the message applies
    server.publish({"emotion": "contempt", "mouth": 0.1, "speaking": False})
    page.wait_for_function("window.face.state.mouthTarget === 0.1")
    assert page.evaluate("window.face.state.emotion") == "sad"
    # and the page still works
    server.publish({"emotion": "happy", "mouth": 0.0, "speaking": False})
    page.wait_for_function("document.documentElement.dataset.emotion === 'happy'")


SHOWN = "(id) => getComputedStyle(document.getElementById(id)).display !== 'none'"


def test_an_interpreter_face_shows_who_speaks_and_the_caption_as_text(
    page, stream: Streamer
) -> None:
    """Interpreter mode's face keys (docs/interpreter.md): a badge for who speaks, the
    translation as a caption, set as text (markup in it is shown, never parsed)."""
    assert page.evaluate("document.documentElement.dataset.speaker") == "none"
    assert not page.evaluate(SHOWN, "caption")
    stream.update(speaker="visitor", caption="", listening=True)
    page.wait_for_function("document.documentElement.dataset.speaker === 'visitor'")
    assert page.evaluate("document.getElementById('speaker').textContent") == (
        "listening to the visitor"
    )
    caption = "Good morning, <b>where</b> is the station?"
    stream.update(speaker="interpreter", caption=caption, listening=False, speaking=True)
    page.wait_for_function("document.documentElement.dataset.caption === 'true'")
    shown = page.evaluate(
        "(() => { const c = document.getElementById('caption');"
        " return {text: c.textContent, bold: c.querySelectorAll('b').length,"
        " visible: getComputedStyle(c).display !== 'none'}; })()"
    )
    assert shown == {"text": caption, "bold": 0, "visible": True}
    assert page.evaluate("document.getElementById('speaker').textContent") == "translating"
    assert page.evaluate(SHOWN, "speaker")
    # an unknown speaker is a malformed message: the page keeps what it showed
    n = page.evaluate("window.face.state.malformed")
    stream.update(speaker="robot")
    page.wait_for_function(f"window.face.state.malformed > {n}")
    assert page.evaluate("document.documentElement.dataset.speaker") == "interpreter"
    stream.update(speaker="nobody", caption="")
    page.wait_for_function("document.documentElement.dataset.caption === 'false'")
    assert page.evaluate("document.documentElement.dataset.speaker") == "nobody"
    assert not page.evaluate(SHOWN, "speaker")


def test_shows_disconnection_and_reconnects_after_a_server_restart(browser) -> None:
    with socket.socket() as s:  # a fixed free port, so the restarted server is at the same URL
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(port=port)
    stream = Streamer(server)
    pg = browser.new_page(viewport={"width": 360, "height": 480})
    try:
        pg.goto(f"http://127.0.0.1:{port}/?gaze=0")
        pg.wait_for_function("document.documentElement.dataset.connected === 'true'")
        # the voice backend reports itself disconnected
        stream.update(connected=False)
        pg.wait_for_function("document.documentElement.dataset.connected === 'false'")
        assert pg.is_visible("#status")
        assert "voice" in pg.inner_text("#status")
        stream.update(connected=True)
        pg.wait_for_function("document.documentElement.dataset.connected === 'true'")
        assert not pg.is_visible("#status")
        # the server goes away mid-word: the mouth must not freeze open
        stream.update(mouth=0.8, speaking=True)
        pg.wait_for_function("window.face.state.mouth > 0.79")
        stream.close()
        server.stop()
        pg.wait_for_function("document.documentElement.dataset.connected === 'false'")
        pg.wait_for_function(
            "window.face.state.mouth === 0 && document.documentElement.dataset.speaking === 'false'"
        )
        assert "server" in pg.inner_text("#status")
        tried = pg.evaluate("window.face.state.connectAttempts")
        pg.wait_for_function(  # a few failed reconnect attempts
            f"window.face.state.connectAttempts >= {tried + 2} "
            "&& window.face.state.server === 'closed'",
            timeout=10000,
        )
        server = start_server(port=port)
        stream = Streamer(server, {"emotion": "surprise", "mouth": 0.0, "speaking": False})
        pg.wait_for_function("document.documentElement.dataset.connected === 'true'", timeout=10000)
        pg.wait_for_function("document.documentElement.dataset.emotion === 'surprise'")
    finally:
        pg.close()
        stream.close()
        server.stop()


@pytest.mark.parametrize("size", [(360, 740), (740, 360)], ids=["portrait", "landscape"])
def test_fits_the_phone_screen_without_scrolling_or_zoom(page, size) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.wait_for_function(f"innerWidth === {size[0]} && innerHeight === {size[1]}")
    fit = page.evaluate(
        """() => {
          const r = document.getElementById('head-shape').getBoundingClientRect();
          const se = document.scrollingElement;
          return {inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
                  big: Math.max(r.width, r.height) / Math.min(innerWidth, innerHeight),
                  scrolls: se.scrollHeight > innerHeight || se.scrollWidth > innerWidth,
                  viewport: document.querySelector('meta[name=viewport]').content};
        }"""
    )
    assert fit["inside"] and not fit["scrolls"]
    assert fit["big"] > 0.6  # the face fills the short side of the screen
    assert "user-scalable=no" in fit["viewport"]


def test_a_conversation_captions_the_user_and_the_creature_apart(page, stream: Streamer) -> None:
    """``face.captions``: the caption says whose words it shows (``caption_by``); the user's
    are set apart (prefixed "you:"), and an unknown side is a malformed message."""
    assert page.evaluate("document.documentElement.dataset.captionBy") == "none"
    stream.update(caption="could you bring me the red cup", caption_by="user")
    page.wait_for_function("document.documentElement.dataset.captionBy === 'user'")
    before = page.evaluate(
        "getComputedStyle(document.getElementById('caption'), '::before').content"
    )
    assert "you:" in before
    assert page.evaluate(SHOWN, "caption")
    stream.update(caption="Sure, I'll get it for you.", caption_by="creature")
    page.wait_for_function("document.documentElement.dataset.captionBy === 'creature'")
    assert page.evaluate(
        "getComputedStyle(document.getElementById('caption'), '::before').content"
    ) in ("none", "normal")
    n = page.evaluate("window.face.state.malformed")
    stream.update(caption="x", caption_by="robot")
    page.wait_for_function(f"window.face.state.malformed > {n}")
    assert page.evaluate("document.documentElement.dataset.captionBy") == "creature"
