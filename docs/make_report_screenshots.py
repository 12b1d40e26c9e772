"""Screenshots of `creature report` for the docs: the demo with one spoken user turn.

python docs/make_report_screenshots.py [OUT_DIR]
(default docs/img; needs espeak-ng, chromium + playwright, matplotlib)

Runs `creature demo --once --robot --no-face` with espeak-ng's "Could you pick up the red cup
for me, please?" as the microphone (after the greeting), draws the record with `creature
report`, and takes two screenshots of the page with Chromium: the figures and the timeline,
then the histograms and the turns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from track2_voice.audio.devices import load_audio, write_wav  # noqa: E402
from track2_voice.frames import SAMPLE_RATE  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
USER = "Could you pick up the red cup for me, please?"
LEAD_S, TAIL_S = 5.0, 14.0


def creature(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        subprocess.run(["espeak-ng", "-w", str(tmp / "raw.wav"), USER], check=True)
        speech = load_audio(tmp / "raw.wav")
        pad = np.zeros
        write_wav(tmp / "user.wav", np.concatenate([pad(int(LEAD_S * SAMPLE_RATE), np.float32),
                  speech, pad(int(TAIL_S * SAMPLE_RATE), np.float32)]))  # fmt: skip
        record, html = tmp / "demo.jsonl", tmp / "report.html"
        creature("demo", "--once", "--robot", "--robot-delay", "0.5", "--no-face",
                 "--input", str(tmp / "user.wav"), "--record", str(record),
                 "--set", "slow_loop.robot.port=0",
                 "--set", f"slow_loop.outbox.path={tmp / 'outbox.sqlite3'}")  # fmt: skip
        creature("report", str(record), "-o", str(html))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(html.as_uri())
            timeline = page.locator("h2", has_text="Timeline")
            hist = page.locator("h2", has_text="Step time")
            deadline = page.locator("h2", has_text="Deadline misses")
            top = 0
            mid = hist.bounding_box()["y"]
            end = deadline.bounding_box()["y"]
            assert timeline.bounding_box() is not None
            page.screenshot(path=str(out / "report-top.png"), full_page=True,
                            clip={"x": 0, "y": top, "width": 1280, "height": mid - top})  # fmt: skip
            page.screenshot(path=str(out / "report-histograms.png"), full_page=True,
                            clip={"x": 0, "y": mid, "width": 1280, "height": end - mid})  # fmt: skip
            browser.close()
    print(f"wrote {out / 'report-top.png'} and {out / 'report-histograms.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img")
