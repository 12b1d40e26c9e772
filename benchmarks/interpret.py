"""Interpreter figures on the creature's own clock: translation lag and step cost.

The creature runs as ``creature run --mode interpret`` does (in this process: the fast loop,
the speech detector, the brain's interpreter, the record), in-process on the torch backend,
hearing a visitor's French synthesized by espeak-ng, whose library reports where each word
starts in the audio. The figures come from the session record:

* **translation lag**: the first translated audio (a voiced output frame) after the visitor's
  first word starts; and the record's own ``translation_started`` lag (after the detector
  heard the visitor, the figure a live session has);
* **per-sentence lag**: for each source sentence, the mean over its words of the time of the
  translated word at the same relative position minus the source word's start (translated
  words: text pieces that begin a word, from the sentence's first word to the next one's);
* **step cost** per frame (model_ms p50/p99), beside a Moshi checkpoint of the same width
  and depth measured in the same run (the ratio is the figure to compare across machines).

Times are the stream's: input sample ``s`` is at ``s / 24000`` s, and the output of frame
``i`` is heard from ``(i + 1) * 80`` ms, once that frame's input has arrived.

With no ``--checkpoint``, tiny random checkpoints in the published layouts are written here
(real moshi code): their voice babbles from the first frame and never ends a passage, so
the lag figures then check the measurement, not a translation. ``--checkpoint
kyutai/hibiki-zero-3b-pytorch-bf16 --device cuda`` gives the model's.

    python benchmarks/interpret.py [--checkpoint DIR_OR_REPO] [--device cpu|cuda|auto]

Prints the figures and writes benchmarks/results/interpret.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from orchestrator.cli.main import main as cli  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.runtime.voice_session import VoiceSession  # noqa: E402
from track2_voice.audio.devices import write_wav  # noqa: E402
from track2_voice.devtools.espeak_truth import EspeakTruth  # noqa: E402
from track2_voice.frames import FRAME_SECONDS, SAMPLE_RATE  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "interpret.json"
SENTENCES = [
    "Bonjour, je cherche la gare, s'il vous plaît.",
    "Est-ce que vous pouvez m'aider à porter cette valise?",
    "Merci beaucoup, vous êtes très gentil.",
]
LEAD_S, GAP_S, TAIL_S = 1.0, 1.5, 3.0
VOICED_MOUTH = 0.05  # the speaking detector's threshold (orchestrator.brain.speaking)


def source_speech(
    voice: str, sentences_said: list[str] = SENTENCES
) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
    """The visitor's speech and, per sentence, its words' start times in it."""
    truth = EspeakTruth(voice=voice, rate_wpm=150)
    parts = [np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)]
    at = LEAD_S
    sentences = []
    for text in sentences_said:
        spoken = truth.speak(text)
        sentences.append([(w.text, at + w.start) for w in spoken.words])
        at += spoken.pcm.size / SAMPLE_RATE + GAP_S
        parts += [spoken.pcm, np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)]
    parts.append(np.zeros(int(TAIL_S * SAMPLE_RATE), np.float32))
    pcm = np.concatenate(parts)
    return (pcm * (0.7 / (float(np.max(np.abs(pcm))) or 1.0))).astype(np.float32), sentences


def run_creature(ckpt: str, wav: Path, mode: str, device: str, tmp: Path) -> list[dict]:
    """One offline session; the record's lines."""
    record = tmp / f"{mode}-{int(time.monotonic() * 1000)}.jsonl"
    cfg = load_config(
        overrides={
            "mode": mode,
            "state_dir": str(tmp / "state"),
            "voice.backend": "torch",
            "voice.torch.hf_repo": ckpt,
            "voice.torch.device": device,
            "audio.input": str(wav),
            "slow_loop.robot.enabled": False,
            "face.enabled": False,
        }
    )
    session = VoiceSession(cfg, record).start()
    try:
        session.start_slow()
        session.start_backend()
        session.run()
    finally:
        session.close()
    return [json.loads(x) for x in record.read_text().splitlines()]


def heard_at(index: int) -> float:
    return (index + 1) * FRAME_SECONDS


def figures(lines: list[dict], sentences: list[list[tuple[str, float]]]) -> dict:
    frames = [x for x in lines if x["kind"] == "frame"]
    first_word = sentences[0][0][1]
    voiced = [heard_at(f["index"]) for f in frames if f["mouth"] >= VOICED_MOUTH]
    after = [t for t in voiced if t >= first_word]
    words = [(heard_at(f["index"]), f["text"]) for f in frames if f.get("text", "")[:1] == " "]
    per_sentence = []
    for k, src in enumerate(sentences):
        start = src[0][1]
        end = sentences[k + 1][0][1] if k + 1 < len(sentences) else float("inf")
        out = [t for t, _ in words if start <= t < end]
        if not out:
            per_sentence.append(None)
            continue
        lags = [
            out[min(len(out) - 1, i * len(out) // len(src))] - t for i, (_, t) in enumerate(src)
        ]
        per_sentence.append(round(1000 * float(np.mean(lags)), 1))
    started = [x for x in lines if x["kind"] == "translation_started" and x["lag_ms"] is not None]
    stopped = next(x for x in lines if x["kind"] == "loop_stopped")
    model_ms = [f["model_ms"] for f in frames]
    return {
        "frames": len(frames),
        "missed": stopped["missed"],
        "voiced_frames": len(voiced),
        "voice_before_source": sum(t < first_word for t in voiced),
        "translation_lag_ms": round(1000 * (after[0] - first_word), 1) if after else None,
        "detected_lag_ms": started[0]["lag_ms"] if started else None,
        "sentence_lag_ms": per_sentence,
        "passages": [
            {k: x[k] for k in ("passage", "ended_by", "lag_ms")}
            for x in lines
            if x["kind"] == "translation"
        ],
        "step_ms_p50": round(float(np.percentile(model_ms, 50)), 2),
        "step_ms_p99": round(float(np.percentile(model_ms, 99)), 2),
    }


def tiny(tmp: Path, model: str) -> str:
    d = tmp / f"tiny-{model}"
    args = ["checkpoint", "tiny", str(d), "--backend", "torch", "--model", model, "--seed", "3"]
    if model == "moshi":
        args += ["--dim", "64", "--layers", "1"]  # Hibiki's tiny width and depth
    assert cli(args) == 0
    return str(d)


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="a Hibiki(-Zero) checkpoint (default: a tiny random one)")
    ap.add_argument("--baseline", help="a Moshi checkpoint for the step-cost ratio (default: tiny)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--voice", default="fr", help="espeak-ng voice of the visitor")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    ap.add_argument("--sentences", type=int, default=len(SENTENCES), help="how many to say")
    ap.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    return short_mode.parse(ap, out="json", sentences=1)


def _run_both(args, said: list[str]):
    """The visitor's speech through Moshi (the baseline) and then the interpreter, the
    machine's load before and after."""
    with tempfile.TemporaryDirectory(prefix="creature-interpret-") as t:
        tmp = Path(t)
        ckpt = args.checkpoint or tiny(tmp, "hibiki")
        base = args.baseline or tiny(tmp, "moshi")
        pcm, sentences = source_speech(args.voice, said)
        wav = tmp / "visitor.wav"
        write_wav(wav, pcm)
        load0 = os.getloadavg()
        base_lines = run_creature(base, wav, "converse", args.device, tmp)
        lines = run_creature(ckpt, wav, "interpret", args.device, tmp)
        load1 = os.getloadavg()
    return pcm, sentences, lines, base_lines, load0, load1


def _print_figures(args, said: list[str], pcm, interp: dict, baseline: dict, ratio) -> None:
    print(f"source: {len(said)} sentences, {pcm.size / SAMPLE_RATE:.1f} s ({args.voice})")
    print(
        f"translation lag: first audio {interp['translation_lag_ms']} ms after the first word; "
        f"after detection {interp['detected_lag_ms']} ms"
    )
    print(f"per-sentence mean word lag (ms): {interp['sentence_lag_ms']}")
    print(
        f"step per frame: p50 {interp['step_ms_p50']} ms, p99 {interp['step_ms_p99']} ms; "
        f"Moshi of the same size p50 {baseline['step_ms_p50']} ms (ratio {ratio})"
    )
    if args.checkpoint is None:  # random weights
        print(
            f"random weights: the voice was on in {interp['voiced_frames']} of "
            f"{interp['frames']} frames ({interp['voice_before_source']} before the visitor "
            "spoke): the lags check the measurement, not a translation"
        )


def main() -> int:
    args = _parse_args()
    said = SENTENCES[: args.sentences]
    import torch

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    pcm, sentences, lines, base_lines, load0, load1 = _run_both(args, said)
    interp, baseline = figures(lines, sentences), figures(base_lines, sentences)
    ratio = round(interp["step_ms_p50"] / baseline["step_ms_p50"], 2)
    result = {
        "checkpoint": args.checkpoint or "tiny random Hibiki-Zero layout (dim 64, 1 layer)",
        "baseline": args.baseline or "tiny random Moshi (dim 64, 1 layer)",
        "device": args.device,
        "source": {"sentences": said, "voice": args.voice, "seconds": pcm.size / SAMPLE_RATE},
        "interpret": interp,
        "baseline_step_ms_p50": baseline["step_ms_p50"],
        "baseline_step_ms_p99": baseline["step_ms_p99"],
        "step_ratio_p50": ratio,
        "random_weights": args.checkpoint is None,
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in load1],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    _print_figures(args, said, pcm, interp, baseline, ratio)
    print(f"load average {load0[0]:.2f} -> {load1[0]:.2f} on {os.cpu_count()} CPUs")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
