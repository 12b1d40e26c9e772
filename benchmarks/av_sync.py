"""Mouth/audio sync measured in the phone page, over a whole scene.

    python benchmarks/av_sync.py [--scene greeting] [--compare-arrival] [--json benchmarks/results/av_sync.json]

Runs ``creature serve --once`` (replay backend, the shipped scene), opens the printed URL in
Chromium with a fake microphone playing real speech (espeak-ng), taps, and lets the scene play
out: the creature hears the mic and answers through the page. The page's own meter
(``window.avsync.report()``) then compares what was played (a worklet tap on the output, on the
playback clock) with the mouth the face drew, by cross-correlation:

  lag_ms      mouth vs the played loudness shaped like the voice's lip-sync (timing only)
  raw_lag_ms  mouth vs the plain played loudness (adds the lip-sync's release smoothing)
  mean / p95  over 3 s windows with speech in them (p95 of |lag|)

Positive = the mouth lags the sound. Target: |lag| <= 20 ms. ``--compare-arrival`` runs the scene
again with the mouth applied when each frame *arrives* (``?mouth=arrival``), the naive way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from tests.phone_browser import CHROMIUM, chromium_args, make_mic_wav  # noqa: E402

URL_LINE = re.compile(r"face: open (\S+)")
SCENE_TIMEOUT_S = 120


def run_scene(browser, scene: str, state_dir: Path, mode: str | None) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "serve", "--face-port", "0", "--once"]
        + ["--scene", scene, "--set", f"phone.state_dir={state_dir}", "--set", "face.gaze=false"]
        + ["--set", "phone.qr=false"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            out.append(line)
            if m := URL_LINE.search(line):
                url = m.group(1)
                break
        if url is None:
            raise SystemExit("creature serve printed no URL:\n" + "".join(out))
        threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True).start()
        page = browser.new_page()
        page.goto(url + (f"&mouth={mode}" if mode else ""))
        page.mouse.click(200, 200)
        page.wait_for_function("window.phoneAudio.state.ws === 'open'", timeout=15000)
        proc.wait(timeout=SCENE_TIMEOUT_S)
        report = page.evaluate("window.avsync.report()")
        report["page"] = page.evaluate("window.phoneAudio.state")
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(out[-1]) if out and out[-1].startswith("{") else {}
    report["server"] = summary
    return report


def figures(r: dict) -> dict:
    def rnd(x):
        return None if x is None else round(x, 1)

    return {
        "lag_ms": rnd(r["lag_ms"]),
        "raw_lag_ms": rnd(r["raw_lag_ms"]),
        "window_mean_ms": rnd(r["mean_ms"]),
        "window_p95_abs_ms": rnd(r["p95_abs_ms"]),
        "windows": len(r["windows_ms"]),
        "corr": None if r["corr"] is None else round(r["corr"], 3),
        "underruns": r["underruns"],
        "dropped": r["dropped"],
        "trimmed": r.get("trimmed"),
        "frames_played": r["played"],
        "seconds": rnd(r["seconds"]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="greeting")
    ap.add_argument("--compare-arrival", action="store_true")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/av_sync.json"))
    args = short_mode.parse(ap, out="json")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        mic = make_mic_wav(Path(tmp) / "speech48.wav")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(mic))
            results = {"playback_clock": run_scene(browser, args.scene, Path(tmp), None)}
            if args.compare_arrival:
                results["on_arrival"] = run_scene(browser, args.scene, Path(tmp), "arrival")
            browser.close()
    out = {"scene": args.scene, "target_abs_ms": 20.0}
    for name, r in results.items():
        f = figures(r)
        out[name] = {**f, "raw": r}
        print(
            f"{name:15s} lag {f['lag_ms']:+.1f} ms (raw {f['raw_lag_ms']:+.1f} ms)  "
            f"windows: mean {f['window_mean_ms']:+.1f} ms, p95 |lag| {f['window_p95_abs_ms']:.1f} ms "
            f"(n={f['windows']})  corr {f['corr']}  underruns {f['underruns']}  "
            f"dropped {f['dropped']}  trimmed {f['trimmed']}  frames {f['frames_played']}"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    ok = abs(out["playback_clock"]["lag_ms"] or 1e9) <= 20.0
    return short_mode.judged(args, 0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
