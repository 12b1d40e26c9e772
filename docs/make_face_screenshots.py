"""Screenshots of the face for the docs: every emotion, mid-speech, listening, interpreting.

python docs/make_face_screenshots.py [OUT_DIR]   (default docs/img; needs chromium + playwright)
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from face import FaceConfig, FaceServer  # noqa: E402
from orchestrator.data_files import load_presets  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
SIZE = {"width": 300, "height": 300}
SETTLE_S = 1.2  # easing between presets takes ~1 s
FRAME_S = 0.08


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    server = FaceServer(FaceConfig(host="127.0.0.1", port=0), load_presets()).start_in_thread()
    state = {"emotion": "neutral", "mouth": 0.0, "speaking": False}
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            server.publish(dict(state))
            time.sleep(FRAME_S)

    threading.Thread(target=stream, daemon=True).start()
    shots = [(e, {"emotion": e}) for e in load_presets()["emotions"]]
    shots += [
        ("speaking", {"emotion": "happy", "mouth": 0.7, "speaking": True}),
        ("listening", {"emotion": "neutral", "mouth": 0.0, "listening": True}),
        ("interpreter", {"emotion": "happy", "mouth": 0.5, "speaking": True,
                         "speaker": "interpreter", "caption": "Hello, where is the station?"}),
    ]  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport=SIZE)
        page.goto(f"http://127.0.0.1:{server.port}/?gaze=0")
        page.wait_for_function("window.face && window.face.state.messages > 0")
        page.evaluate("document.getElementById('hint').remove()")
        for name, st in shots:
            state.clear()
            state.update({"emotion": "neutral", "mouth": 0.0, "speaking": False, **st})
            time.sleep(SETTLE_S)
            if name == "listening":
                page.wait_for_function("window.face.state.nod > 0.8")
            page.wait_for_function("!window.face.state.blinking")
            page.screenshot(path=str(out / f"face-{name}.png"))
            print(out / f"face-{name}.png")
        browser.close()
    stop.set()
    server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
