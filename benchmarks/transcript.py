"""Transcript benchmark: what the user's side costs and how well it hears.

- word error rate of each recogniser on espeak-ng speech at two speaking rates: the sentences
  below, spoken one after another with a pause, heard as one live session would hear them
  (one recogniser, frames of 80 ms), scored against the text;
- the recogniser's CPU per 80 ms frame: the thread CPU time of each ``accept`` (p50/p99) and
  its share of one core (mean / 80 ms), in-process; and, live, the child process's CPU over
  the run divided by its frames;
- the fast loop's overhead p99 with the transcript on (live: a child process) and off, in the
  same run, interleaved off/on/off/on on the same speech at real time, the replay backend
  stepping. Guard: on - off <= 1 ms. Beside it, the loop's own cost of the transcript: the time
  in ``feed`` (a non-blocking write of the frame, a non-blocking read of the words back). On a
  machine whose load average is above its cores, the loop is preempted by whatever else runs,
  and a transcript using a fifth of a core makes that likelier: the result says ``loaded``.

    python benchmarks/transcript.py [--short]

Prints the figures and writes benchmarks/results/transcript.json (--short: a quick pass for
CI that checks the guard and writes benchmarks/results/transcript_short.json).
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

from benchmarks import short_mode  # noqa: E402
from track2_voice.audio.devices import FileSource, frames_of, write_wav  # noqa: E402
from track2_voice.backends.replay import ReplayBackend  # noqa: E402
from track2_voice.config import TranscriptConfig, VoiceConfig  # noqa: E402
from track2_voice.devtools.espeak_truth import EspeakTruth  # noqa: E402
from track2_voice.devtools.wer import word_errors, words  # noqa: E402
from track2_voice.events import DiscardSink, UserWord  # noqa: E402
from track2_voice.frames import FRAME_MS  # noqa: E402
from track2_voice.loop import FastLoop  # noqa: E402
from track2_voice.transcript.recognizers import in_process  # noqa: E402
from track2_voice.transcript.worker import TranscriptWorker, start_transcript  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SENTENCES = [
    "Could you bring me the red cup from the table?",
    "Please turn off the lights in the kitchen.",
    "Can you pick up the blue block?",
    "Stop, wait, don't do that.",
    "I need you to open the door.",
    "Would you mind putting the book on the shelf?",
    "Go to the living room and wait there.",
    "Thank you very much.",
]
RATES = (130, 175)  # words per minute: espeak-ng's slow-ish and its default-ish
GUARD_MS = 1.0
PAUSE_S = 0.6


def speech(rate: int, sentences: list[str]) -> np.ndarray:
    e = EspeakTruth(rate_wpm=rate)
    gap = np.zeros(int(24_000 * PAUSE_S), np.float32)
    parts = [gap]
    for s in sentences:
        parts += [e.speak(s).pcm, gap]
    return np.concatenate([*parts, gap, gap])


def wer_and_cpu(backend: str, rate: int, sentences: list[str]) -> dict:
    pcm = speech(rate, sentences)
    got: list[UserWord] = []
    cfg = TranscriptConfig(backend=backend)
    w = TranscriptWorker(got.append, in_process(backend, cfg), inline=True)
    t0 = time.perf_counter()
    for i, f in enumerate(frames_of(pcm)):
        w.hear(i, time.monotonic(), f)
    w.flush()
    wall = time.perf_counter() - t0
    w.close()
    ref = words(" ".join(sentences))
    hyp = [u.text for u in got if u.final]
    cpu = w.cpu_ms.values()
    return {
        "backend": backend,
        "rate_wpm": rate,
        "audio_s": round(len(pcm) / 24_000, 2),
        "reference_words": len(ref),
        "heard_words": len(hyp),
        "wer": round(word_errors(ref, words(" ".join(hyp))) / len(ref), 3),
        "heard": " ".join(hyp),
        "partials": sum(not u.final for u in got),
        "cpu_ms_per_frame_p50": round(float(np.percentile(cpu, 50)), 3),
        "cpu_ms_per_frame_p99": round(float(np.percentile(cpu, 99)), 3),
        "core_share": round(float(np.mean(cpu)) / FRAME_MS, 4),
        "real_time_factor": round(wall / (len(pcm) / 24_000), 4),
    }


def shared_mimi(frames: int = 40) -> dict:
    """Encoding the user's audio once for both models: Moshi hears 8 Mimi codebooks, Kyutai's
    STT 32 of the same Mimi (the same e351c8d8 checkpoint), and a residual quantizer's first 8
    codes do not depend on how many follow. So one 32-codebook encode can feed both: checked
    here code for code, and timed against encoding twice (8 + 32), full-size Mimi with random
    centroids, one CPU thread."""
    import torch
    from moshi.models.loaders import get_mimi

    from track2_voice.devtools.checkpoint_random import random_mimi_state

    torch.set_num_threads(1)
    torch.manual_seed(0)
    m32 = get_mimi(None, None, device="cpu", num_codebooks=32)
    m32.load_state_dict(random_mimi_state(m32, 0))
    m8 = get_mimi(None, None, device="cpu", num_codebooks=8)
    m8.load_state_dict(m32.state_dict())
    pcm = torch.from_numpy(speech(RATES[0], SENTENCES[:1])[: frames * 1920].copy())[None, None]

    def encode(m) -> tuple[np.ndarray, torch.Tensor]:
        ts, codes = [], []
        with torch.no_grad(), m.streaming(1):
            for i in range(frames):
                t0 = time.perf_counter()
                codes.append(m.encode(pcm[:, :, i * 1920 : (i + 1) * 1920]))
                ts.append(time.perf_counter() - t0)
        return np.array(ts[3:]) * 1000.0, torch.cat(codes, -1)

    t8, c8 = encode(m8)
    t32, c32 = encode(m32)
    twice, once = float(np.median(t8) + np.median(t32)), float(np.median(t32))
    return {
        "first_8_codes_equal": bool(torch.equal(c32[:, :8], c8)),
        "distinct_codes_seen": int(torch.unique(c8).numel()),
        "encode_8_ms_p50": round(float(np.median(t8)), 2),
        "encode_32_ms_p50": round(once, 2),
        "twice_ms_per_frame": round(twice, 2),
        "once_ms_per_frame": round(once, 2),
        "saved_ms_per_frame": round(twice - once, 2),
        "saved_share": round((twice - once) / twice, 3),
    }


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loop_run(wav: Path, backend: str | None) -> dict:
    """One real-time fast-loop run on the WAV; with ``backend`` the transcript is on (live)."""
    cfg = VoiceConfig()
    worker = None
    child_cpu0 = None
    if backend is not None:
        worker = start_transcript(DiscardSink().publish, TranscriptConfig(backend=backend), True)
        proc = getattr(worker, "_proc", None)
        if proc is not None and Path(f"/proc/{proc.pid}/stat").exists():
            child_cpu0 = (proc.pid, _proc_cpu_s(proc.pid))
    feed_ms: list[float] = []
    if worker is not None:  # the loop's own cost of the transcript: the time in feed()
        feed = worker.hear

        def timed_feed(index, t, pcm) -> None:
            t0 = time.perf_counter()
            feed(index, t, pcm)
            feed_ms.append((time.perf_counter() - t0) * 1000.0)

        worker.hear = timed_feed
    loop = FastLoop(ReplayBackend(), FileSource(wav, realtime=True), events=DiscardSink(),
                    cfg=cfg, transcript=worker)  # fmt: skip
    loop.backend.start()
    stats = loop.run()  # its flush waits for the child's last words (and its CPU figures)
    out = {
        "transcript": backend or "off",
        "frames": stats.frames,
        "missed": stats.missed,
        "overhead_ms_p50": round(float(np.percentile(stats.overhead_ms.values(), 50)), 4),
        "overhead_ms_p99": round(float(np.percentile(stats.overhead_ms.values(), 99)), 4),
        "overhead_ms_max": round(float(np.max(stats.overhead_ms.values())), 4),
        "frames_over_1ms": int(np.sum(stats.overhead_ms.values() > 1.0)),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    if worker is not None:
        out["dropped"] = worker.dropped
        out["feed_ms_p50"] = round(float(np.percentile(feed_ms, 50)), 4)
        out["feed_ms_p99"] = round(float(np.percentile(feed_ms, 99)), 4)
        cpu = worker.cpu_ms.values()
        if len(cpu):
            out["child_cpu_ms_per_frame_p50"] = round(float(np.percentile(cpu, 50)), 3)
            out["child_cpu_ms_per_frame_p99"] = round(float(np.percentile(cpu, 99)), 3)
        if child_cpu0 is not None:
            pid, c0 = child_cpu0
            used = _proc_cpu_s(pid) - c0
            out["child_cpu_ms_per_frame_mean"] = round(used * 1000.0 / max(1, stats.frames), 3)
            out["child_core_share"] = round(used * 1000.0 / max(1, stats.frames) / FRAME_MS, 4)
    loop.close()
    return out


def _wer_rows(sentences: list[str]) -> list[dict]:
    """Word error rate and CPU of the streaming STT at each speaking rate."""
    rows = []
    for rate in RATES:
        row = wer_and_cpu("pocketsphinx", rate, sentences)
        rows.append(row)
        print(f"pocketsphinx @ {rate} wpm: WER {row['wer']:.3f} ({row['heard_words']} words "
              f"heard of {row['reference_words']}), CPU per frame p50 "
              f"{row['cpu_ms_per_frame_p50']} ms p99 {row['cpu_ms_per_frame_p99']} ms, "
              f"{100 * row['core_share']:.1f} % of a core")  # fmt: skip
    return rows


def _add_shared_mimi(result: dict) -> None:
    try:
        m = result["shared_mimi"] = shared_mimi()
        print(f"Mimi encoded once for Moshi (8 codebooks) and the STT (32): first 8 codes "
              f"equal: {m['first_8_codes_equal']}; {m['twice_ms_per_frame']} ms -> "
              f"{m['once_ms_per_frame']} ms per frame (saves {m['saved_ms_per_frame']} ms, "
              f"{100 * m['saved_share']:.0f} %)")  # fmt: skip
    except ImportError as e:
        print(f"shared Mimi: skipped ({e}: the torch extra)")


def _fast_loop_runs(sentences: list[str]) -> list[dict]:
    """The fast loop on the spoken sentences, transcript off and on, alternated."""
    wav = RESULTS / ".transcript_speech.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    write_wav(wav, speech(RATES[0], sentences))
    runs = []
    try:
        for on in (False, True, False, True):
            runs.append(loop_run(wav, "pocketsphinx" if on else None))
            r = runs[-1]
            print(f"fast loop, transcript {r['transcript']}: overhead p50 "
                  f"{r['overhead_ms_p50']} ms p99 {r['overhead_ms_p99']} ms, "
                  f"{r['missed']} missed of {r['frames']}"
                  + (f", feed() p50 {r['feed_ms_p50']} ms p99 {r['feed_ms_p99']} ms, child CPU "
                     f"{r.get('child_cpu_ms_per_frame_mean')} ms/frame, dropped {r['dropped']}"
                     if on else ""))  # fmt: skip
    finally:
        wav.unlink(missing_ok=True)
    return runs


def _judge_overhead(result: dict, runs: list[dict]) -> None:
    """The transcript's cost to the loop (worst p99 on minus off) against the guard."""
    off = max(r["overhead_ms_p99"] for r in runs if r["transcript"] == "off")
    on = max(r["overhead_ms_p99"] for r in runs if r["transcript"] != "off")
    result["fast_loop"] = runs
    result["overhead_p99_on_minus_off_ms"] = round(on - off, 4)
    result["overhead_p99_on_over_off"] = round(on / off, 3) if off else None
    result["guard_ms"] = GUARD_MS
    result["guard_ok"] = on - off <= GUARD_MS
    # a machine busier than its cores preempts the loop itself: the off runs show how much
    result["loaded"] = max(r["load_1min"] for r in runs) > (os.cpu_count() or 1)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    verdict = "ok" if result["guard_ok"] else "FAILED"
    if not result["guard_ok"] and result["loaded"]:
        verdict += f" (but the load average was above {os.cpu_count()} cores: noise)"
    print(f"overhead p99 on - off: {on - off:+.4f} ms (guard <= {GUARD_MS} ms): {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=RESULTS / "transcript.json", help="the figures")
    args = short_mode.parse(ap, out="json")  # --short: three sentences, no shared-Mimi timing
    sentences = SENTENCES[:3] if args.short else SENTENCES
    load_before = os.getloadavg()
    result: dict = {
        "command": "python benchmarks/transcript.py" + (" --short" if args.short else ""),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": [round(x, 2) for x in load_before],
        "wer": [],
    }
    result["wer"] = _wer_rows(sentences)
    if not args.short:
        _add_shared_mimi(result)
    _judge_overhead(result, _fast_loop_runs(sentences))
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return short_mode.judged(args, 0 if result["guard_ok"] or result["loaded"] else 1)


if __name__ == "__main__":
    sys.exit(main())
