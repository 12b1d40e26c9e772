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

Each look-ahead (``--lookahead``, frames; the default ``face.visemes.lookahead_frames`` is the
headline): 0 times the phonemes from the words alone; above 0 aligns them to the audio and
shows each frame that many frames later (audio the phone has buffered but not yet played).

Cost: the tracker's update per frame (on the I/O loop, never the fast loop), p50/p99/max, with
the G2P cache cold (first pass) and warm (later passes), in wall time and in the thread's CPU
time (which a loaded machine's preemptions do not inflate), per look-ahead, and the face-state
composition of the same frames without visemes as the same-run baseline.

    python benchmarks/visemes.py [--rates 150,190] [--repeat 5] [--lookahead 0,1,2,3]
                                 [--sentences benchmark|held-out]

Prints the figures and writes benchmarks/results/visemes.json (visemes_held_out.json).
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
from benchmarks.spoken_frames import spoken_frames  # noqa: E402
from face.config import VisemeConfig  # noqa: E402
from orchestrator.brain.face_state import face_state  # noqa: E402
from orchestrator.brain.g2p import Phonemizer  # noqa: E402
from orchestrator.brain.viseme_track import VisemeTracker  # noqa: E402
from orchestrator.data_files import load_visemes  # noqa: E402
from track2_voice.devtools.espeak_truth import EspeakTruth, Spoken  # noqa: E402
from track2_voice.events import FrameEvent  # noqa: E402
from track2_voice.frames import FRAME_SECONDS  # noqa: E402

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
# sentences the aligner's class features were NOT set on: --sentences held-out checks that the
# figures hold beyond the sentences above
HELD_OUT = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "Could you bring me a glass of water from the kitchen?",
    "I will open the window and look outside.",
    "Turn off the lights when you leave the room.",
    "Peter Piper picked a peck of pickled peppers.",
    "The weather today is warm and sunny with a light breeze.",
    "Please put the book back on the shelf next to the vase.",
    "Which way is the station from here?",
    "Good morning, did you sleep well last night?",
]
SETS = {
    "benchmark": (SENTENCES, RESULTS),
    "held-out": (HELD_OUT, RESULTS.with_name("visemes_held_out.json")),
}
RMS_CLOSED = 0.1  # an RMS mouth below this shows closed lips
TAIL = 4  # silent frames after each sentence


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


def shown_weights(tracker: VisemeTracker, frames: list[FrameEvent], tail: list[FrameEvent]):
    """Each frame's weights as shown: with look-ahead L the update of frame k shows frame
    k - L, so ``tail`` (L more silent frames) brings the last ones out."""
    out = [tracker.update(f) for f in frames + tail]
    return out[len(tail) :]


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


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="150,190", help="espeak-ng words per minute, comma list")
    ap.add_argument("--repeat", type=int, default=5, help="timing passes over all sentences")
    ap.add_argument("--lookahead", default="0,1,2,3", help="look-aheads to score, frames")
    ap.add_argument("--sentences", choices=list(SETS), default="benchmark",
                    help="the benchmark's sentences, or others the aligner was not set on")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write the figures (default: the sentence set's file)")  # fmt: skip
    return short_mode.parse(ap, rates="150", repeat=2, lookahead="1")


def results_path(args: argparse.Namespace) -> Path:
    """``--json``, else the sentence set's file (in the temporary folder for ``--short``)."""
    results = SETS[args.sentences][1]
    if args.json is not None:
        return args.json
    if args.short:
        return short_mode.short_dir() / results.name
    return results


def lookaheads_of(args: argparse.Namespace, headline: int) -> list[int]:
    """The look-aheads asked for, plus the default one (the headline) if it was left out."""
    lookaheads = [int(x) for x in args.lookahead.split(",")]
    if headline not in lookaheads:
        lookaheads.append(headline)
    return lookaheads


def score_sentence(spoken, frames, lookaheads, vs, g2p, acc: dict[str, dict]) -> None:
    """Add one sentence's hits to ``acc``: the tracker at each look-ahead, and an RMS mouth."""
    truth = truth_frames(spoken, vs, len(frames))
    for n in lookaheads:
        tracker = VisemeTracker(vs, g2p.phonemes, lead_frames=0, lookahead_frames=n)
        weights = shown_weights(tracker, frames, silence(len(frames), n))
        shown = [dominant(w) for w in weights]
        closed = [s == "MBP" for s in shown]
        m = f"lookahead_{n}"
        acc[m] = add(acc[m], score(spoken, frames, shown, closed, truth, vs))
    rms_shown = [vs.rest if f.mouth < RMS_CLOSED else "AA" for f in frames]
    rms_closed = [f.mouth < RMS_CLOSED for f in frames]
    acc["rms"] = add(acc["rms"], score(spoken, frames, rms_shown, rms_closed, truth, vs))


def score_accuracy(args, sentences, lookaheads, modes, vs, g2p, speaker):
    """Every sentence at every rate: the hits per mode summed over all (``totals``) and per
    rate, and each sentence's frames (``cases``) for the timing passes."""
    totals: dict[str, dict] = {m: {} for m in modes}
    per_rate = {}
    cases = []
    for wpm in [int(r) for r in args.rates.split(",")]:
        speaker.set_rate(wpm)
        acc: dict[str, dict] = {m: {} for m in modes}
        for text in sentences:
            spoken = speaker.speak(text)
            frames = spoken_frames(spoken, TAIL)
            score_sentence(spoken, frames, lookaheads, vs, g2p, acc)
            cases.append(frames)
        per_rate[wpm] = {k: rates(v) for k, v in acc.items()}
        for k in totals:
            totals[k] = add(totals[k], acc[k])
    return totals, per_rate, cases


def time_pass(rep, frames, lookaheads, vs, g2p, cost: dict[str, list[float]]) -> None:
    """One pass over a sentence's frames per look-ahead: the tracker's update and the face
    state it feeds (cold on the first pass, warm after), and the face state alone."""
    cpu = time.thread_time
    for n in lookaheads:
        tracker = VisemeTracker(vs, g2p.phonemes, lookahead_frames=n)
        for f in frames:
            c0 = cpu()
            t0 = time.perf_counter()
            tracker.update(f)
            face_state(f, speaking=True, connected=True, visemes=tracker.weights).to_dict()
            t1 = time.perf_counter()
            c1 = cpu()
            cost[f"cold_{n}" if rep == 0 else f"warm_{n}"].append((t1 - t0) * 1000)
            if rep > 0:
                cost[f"warm_cpu_{n}"].append((c1 - c0) * 1000)
            if n == lookaheads[0]:
                t2 = time.perf_counter()
                face_state(f, speaking=True, connected=True).to_dict()
                cost["baseline"].append((time.perf_counter() - t2) * 1000)


def time_per_frame(cases, lookaheads, vs, repeat: int) -> dict[str, dict]:
    """The cost per frame: a fresh tracker and cache (cold), then the same frames again (warm);
    p50/p99/max in ms per series."""
    cold_g2p = Phonemizer("en-us")
    cost: dict[str, list[float]] = {"baseline": []}
    for n in lookaheads:
        cost.update({f"cold_{n}": [], f"warm_{n}": [], f"warm_cpu_{n}": []})
    for rep in range(repeat):
        for frames in cases:
            time_pass(rep, frames, lookaheads, vs, cold_g2p, cost)
    return {
        k: {"p50": pct(v, 50), "p99": pct(v, 99), "max": pct(v, 100), "n": len(v)}
        for k, v in cost.items()
    }


def figures(args, headline, lookaheads, accuracy, per_rate, ms, g2p, sentences, loads) -> dict:
    """The JSON written: accuracy (the headline look-ahead first), cost, and the machine."""
    load0, load1 = loads
    return {
        "headline_lookahead_frames": headline,
        "accuracy": {"visemes": accuracy[f"lookahead_{headline}"], **accuracy},
        "accuracy_by_rate_wpm": per_rate,
        "per_frame_ms": ms,
        "warm_cpu_p50_over_baseline_p50": {
            n: round(ms[f"warm_cpu_{n}"]["p50"] / max(1e-9, ms["baseline"]["p50"]), 1)
            for n in lookaheads
        },
        "sentences": len(sentences),
        "sentence_set": args.sentences,
        "espeak_ng": g2p.version,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(load0, 2),
            "load_avg_1m_at_end": round(load1, 2),
        },
    }


def print_accuracy(modes, headline, accuracy, per_rate) -> None:
    for mode in modes:
        r = accuracy[mode]
        label = mode + (" (default)" if mode == f"lookahead_{headline}" else "")
        print(
            f"  {label:22s} class accuracy {100 * r['class_accuracy_speech']:.1f} % of speech"
            f" frames ({100 * r['class_accuracy_all']:.1f} % of all), bilabial closures"
            f" {100 * r['bilabial_closure_rate']:.1f} % ({r['bilabial_hits']}/{r['bilabials']})"
        )
    for wpm, by in per_rate.items():
        parts = [
            f"{m.removeprefix('lookahead_')}: {100 * by[m]['class_accuracy_speech']:.1f} % /"
            f" {100 * by[m]['bilabial_closure_rate']:.1f} %"
            for m in modes
            if m != "rms"
        ]
        print(f"  at {wpm} wpm, by look-ahead: " + "; ".join(parts))


def print_cost(lookaheads, ms, loads) -> None:
    for n in lookaheads:
        for k, label in (
            (f"cold_{n}", "G2P cold"),
            (f"warm_{n}", "G2P warm"),
            (f"warm_cpu_{n}", "G2P warm, thread CPU time"),
        ):
            m = ms[k]
            print(
                f"  per frame, look-ahead {n} ({label}): p50 {m['p50']:.4f} ms,"
                f" p99 {m['p99']:.4f} ms, max {m['max']:.4f} ms"
            )
    m = ms["baseline"]
    print(f"  per frame (face state alone): p50 {m['p50']:.4f} ms, p99 {m['p99']:.4f} ms")
    load0, load1 = loads
    print(
        f"  load average (1 min): {load0:.2f} at start, {load1:.2f} at end, {os.cpu_count()} CPUs"
    )


def main() -> None:
    args = parse_args()
    sentences = SETS[args.sentences][0]
    results = results_path(args)
    headline = VisemeConfig().lookahead_frames
    lookaheads = lookaheads_of(args, headline)
    load0 = os.getloadavg()[0]
    vs = load_visemes()
    g2p = Phonemizer("en-us")
    speaker = EspeakTruth("en-us")
    modes = [f"lookahead_{n}" for n in lookaheads] + ["rms"]
    totals, per_rate, cases = score_accuracy(args, sentences, lookaheads, modes, vs, g2p, speaker)
    ms = time_per_frame(cases, lookaheads, vs, args.repeat)
    loads = (load0, os.getloadavg()[0])
    accuracy = {k: rates(v) for k, v in totals.items()}
    result = figures(args, headline, lookaheads, accuracy, per_rate, ms, g2p, sentences, loads)
    print(
        f"visemes: {len(sentences)} {args.sentences} sentences at {args.rates} wpm, espeak-ng {g2p.version}"
    )
    print_accuracy(modes, headline, accuracy, per_rate)
    print_cost(lookaheads, ms, loads)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {results}")


def silence(start: int, n: int) -> list[FrameEvent]:
    z = np.zeros(int(round(FRAME_SECONDS * 24000)), np.float32)
    return [
        FrameEvent(
            index=start + i,
            t=(start + i) * FRAME_SECONDS,
            mouth=0.0,
            rms_db=-120.0,
            text=None,
            pcm=z,
        )
        for i in range(n)
    ]


if __name__ == "__main__":
    main()
