"""Viseme benchmark: lip-sync accuracy against ground truth, and the per-frame cost.

Ground truth: espeak-ng speaks each test sentence and reports where every word and phoneme
starts in its audio (track2_voice/devtools/espeak_truth.py). The creature gets what Moshi would
give it: the audio in 80 ms frames and each word as a text piece at the frame where it starts.
Per frame it compares the shape the face is told to draw with the truth (the viseme of the
phoneme at the frame's middle):

- class accuracy: the dominant viseme is the true one, over the frames with speech, and over
  all frames (silence included);
- bilabial closures: the share of m, b, p phonemes during which some frame shows closed lips
  (visemes: MBP dominant; rms: the mouth below 0.1);
- rms baseline: what an RMS mouth can show is closed (rest) or open (AA).

Cost: the tracker's update per frame (on the I/O loop, never the fast loop), p50/p99/max, with
the G2P cache cold (first pass) and warm (later passes), in wall time and in the thread's CPU
time (which a loaded machine's preemptions do not inflate), and the face-state composition of
the same frames without visemes as the same-run baseline.

    python benchmarks/visemes.py [--rates 150,190] [--repeat 5]

Prints the figures and writes benchmarks/results/visemes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from affect.visemes import VisemeSet, dominant  # noqa: E402
from benchmarks import short_mode  # noqa: E402
from orchestrator.brain.face_state import face_state  # noqa: E402
from orchestrator.brain.g2p import Phonemizer  # noqa: E402
from orchestrator.brain.viseme_track import VisemeTracker  # noqa: E402
from orchestrator.data_files import load_visemes  # noqa: E402
from track2_voice.audio.devices import frames_of  # noqa: E402
from track2_voice.devtools.espeak_truth import EspeakTruth, Spoken  # noqa: E402
from track2_voice.events import FrameEvent  # noqa: E402
from track2_voice.frames import FRAME_SECONDS  # noqa: E402
from track2_voice.lipsync import LipSync  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "visemes.json"
SENTENCES = [
    "Hello there! I'm awake. What can I do for you?",
    "Sure, I'll pick up the red cup.",
    "Bob made a big map of the moon.",
    "Please pass me the purple pepper, my friend.",
    "We would go to the pool in June with you.",
    "My mother bought more blue boots at the market.",
    "Five fat fish found a very fine field.",
    "Think of the three things that I told you about.",
    "Look at the little yellow lamp on the table.",
    "Anything else? Maybe we could move the box by the window.",
]
RMS_CLOSED = 0.1  # an RMS mouth below this shows closed lips


def truth_frames(spoken: Spoken, vs: VisemeSet, n: int) -> list[str]:
    """The true viseme at the middle of each frame (a diphthong's halves split its time)."""
    out = []
    for k in range(n):
        t = (k + 0.5) * FRAME_SECONDS
        cls = vs.rest
        for p in spoken.phonemes:
            if p.start <= t < p.end:
                shapes = vs.visemes_of(p.text)
                if shapes:
                    half = p.start + (p.end - p.start) * vs.spec.timing.diphthong_share
                    cls = shapes[0] if len(shapes) == 1 or t < half else shapes[1]
                break
        out.append(cls)
    return out


def frame_events(spoken: Spoken) -> list[FrameEvent]:
    """The audio as the fast loop sees it, each word a piece at the frame it starts in."""
    lips = LipSync()
    pieces: dict[int, str] = {}
    for w in spoken.words:
        k = int(w.start / FRAME_SECONDS)
        pieces[k] = pieces.get(k, "") + " " + w.text
    frames = frames_of(spoken.pcm)
    frames += [np.zeros_like(frames[0])] * 4  # the silence after the sentence
    out = []
    for k, pcm in enumerate(frames):
        m = lips.update(pcm)
        out.append(
            FrameEvent(k, k * FRAME_SECONDS, m, lips.last_db, pieces.get(k), 0, 0, False, False)
        )
    return out


def score(spoken, frames, shown, closed, truth, vs) -> dict:
    speech = [i for i, c in enumerate(truth) if c != vs.rest]
    hits = sum(shown[i] == truth[i] for i in speech)
    all_hits = sum(a == b for a, b in zip(shown, truth))
    bilabials = [p for p in spoken.phonemes if vs.visemes_of(p.text) == ("MBP",)]
    closed_hits = 0
    for p in bilabials:
        ks = range(int(p.start / FRAME_SECONDS), int(p.end / FRAME_SECONDS - 1e-9) + 1)
        closed_hits += any(closed[k] for k in ks if k < len(closed))
    return {
        "speech_frames": len(speech),
        "speech_hits": hits,
        "frames": len(truth),
        "all_hits": all_hits,
        "bilabials": len(bilabials),
        "bilabial_hits": closed_hits,
    }


def add(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b[k] for k in b}


def rates(d: dict) -> dict:
    return {
        "class_accuracy_speech": round(d["speech_hits"] / max(1, d["speech_frames"]), 4),
        "class_accuracy_all": round(d["all_hits"] / max(1, d["frames"]), 4),
        "bilabial_closure_rate": round(d["bilabial_hits"] / max(1, d["bilabials"]), 4),
        **d,
    }


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 4) if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="150,190", help="espeak-ng words per minute, comma list")
    ap.add_argument("--repeat", type=int, default=5, help="timing passes over all sentences")
    ap.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = short_mode.parse(ap, out="json", rates="150", repeat=2)
    load0 = os.getloadavg()[0]
    vs = load_visemes()
    g2p = Phonemizer("en-us")
    speaker = EspeakTruth("en-us")
    totals = {"visemes": {}, "rms": {}}
    per_rate = {}
    cases = []
    for wpm in [int(r) for r in args.rates.split(",")]:
        speaker.set_rate(wpm)
        acc = {"visemes": {}, "rms": {}}
        for text in SENTENCES:
            spoken = speaker.speak(text)
            frames = frame_events(spoken)
            truth = truth_frames(spoken, vs, len(frames))
            tracker = VisemeTracker(vs, g2p.phonemes, lead_frames=0)
            weights = [tracker.update(f) for f in frames]
            shown = [dominant(w) for w in weights]
            closed = [s == "MBP" for s in shown]
            rms_shown = [vs.rest if f.mouth < RMS_CLOSED else "AA" for f in frames]
            rms_closed = [f.mouth < RMS_CLOSED for f in frames]
            acc["visemes"] = add(acc["visemes"], score(spoken, frames, shown, closed, truth, vs))
            acc["rms"] = add(acc["rms"], score(spoken, frames, rms_shown, rms_closed, truth, vs))
            cases.append(frames)
        per_rate[wpm] = {k: rates(v) for k, v in acc.items()}
        for k in totals:
            totals[k] = add(totals[k], acc[k])

    # cost: a fresh tracker and cache (cold), then the same frames again (warm)
    cold_g2p = Phonemizer("en-us")
    cost = {"cold": [], "warm": [], "baseline": [], "warm_cpu": []}
    cpu = time.thread_time
    for rep in range(args.repeat):
        for frames in cases:
            tracker = VisemeTracker(vs, cold_g2p.phonemes, lead_frames=0)
            for f in frames:
                c0 = cpu()
                t0 = time.perf_counter()
                tracker.update(f)
                w = tracker.weights
                s = face_state(f, speaking=True, connected=True, visemes=w)
                t1 = time.perf_counter()
                c1 = cpu()
                face_state(f, speaking=True, connected=True)
                t2 = time.perf_counter()
                del s
                cost["cold" if rep == 0 else "warm"].append((t1 - t0) * 1000)
                cost["baseline"].append((t2 - t1) * 1000)
                if rep > 0:
                    cost["warm_cpu"].append((c1 - c0) * 1000)
    load1 = os.getloadavg()[0]
    ms = {
        k: {"p50": pct(v, 50), "p99": pct(v, 99), "max": pct(v, 100), "n": len(v)}
        for k, v in cost.items()
    }
    result = {
        "accuracy": {k: rates(v) for k, v in totals.items()},
        "accuracy_by_rate_wpm": per_rate,
        "per_frame_ms": ms,
        "warm_p50_over_baseline_p50": round(
            ms["warm"]["p50"] / max(1e-9, ms["baseline"]["p50"]), 1
        ),
        "sentences": len(SENTENCES),
        "espeak_ng": g2p.version,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(load0, 2),
            "load_avg_1m_at_end": round(load1, 2),
        },
    }
    print(f"visemes: {len(SENTENCES)} sentences at {args.rates} wpm, espeak-ng {g2p.version}")
    for mode in ("visemes", "rms"):
        r = result["accuracy"][mode]
        print(
            f"  {mode:8s} class accuracy {100 * r['class_accuracy_speech']:.1f} % of speech frames"
            f" ({100 * r['class_accuracy_all']:.1f} % of all frames),"
            f" bilabial closures {100 * r['bilabial_closure_rate']:.1f} %"
            f" ({r['bilabial_hits']}/{r['bilabials']})"
        )
    for wpm, by in per_rate.items():
        v, r = by["visemes"], by["rms"]
        print(
            f"  at {wpm} wpm: visemes {100 * v['class_accuracy_speech']:.1f} % /"
            f" {100 * v['bilabial_closure_rate']:.1f} % closures; rms"
            f" {100 * r['class_accuracy_speech']:.1f} % / {100 * r['bilabial_closure_rate']:.1f} %"
        )
    for k in ("cold", "warm", "warm_cpu", "baseline"):
        m = ms[k]
        label = {
            "cold": "tracker, G2P cold",
            "warm": "tracker, G2P warm",
            "warm_cpu": "tracker, G2P warm, thread CPU time",
            "baseline": "face state alone",
        }[k]
        print(
            f"  per frame ({label}): p50 {m['p50']:.4f} ms, p99 {m['p99']:.4f} ms, max {m['max']:.4f} ms"
        )
    print(
        f"  load average (1 min): {load0:.2f} at start, {load1:.2f} at end, {os.cpu_count()} CPUs"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
