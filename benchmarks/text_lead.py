"""The text lead: by how many frames a backend's audio lags the text piece of the same moment
(``face.visemes.text_lead_frames``, the acoustic delay the viseme track shifts words by).

- replay: each scene word's piece frame against the voice onset that follows it (words after
  a pause, where the onset is unambiguous); the median difference in frames.
- mlx, torch: the generator's own bookkeeping on a checkpoint (a tiny one from
  ``creature checkpoint tiny DIR --backend mlx|torch`` works: the figure is the pipeline's, not
  the weights'). Hooks record the text token and the first (undelayed) audio codebook token as
  they are sampled; the step that *returns* each is found; the lead is the audio's offset minus
  the text's. On real weights Moshi may add a lead of its own in what it says: compare the
  piece frames with the voice onsets of a recording of it (the replay method) to see it.

    python benchmarks/text_lead.py --backend replay [--scene greeting]
    python benchmarks/text_lead.py --backend mlx --hf-repo DIR [--steps 40]
    python benchmarks/text_lead.py --backend torch --hf-repo DIR

Prints the lead and writes benchmarks/results/text_lead_BACKEND.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from face.config import TEXT_LEAD_FRAMES  # noqa: E402
from track2_voice.backends.replay import ReplayBackend  # noqa: E402
from track2_voice.config import VoiceConfig  # noqa: E402
from track2_voice.frames import silence  # noqa: E402
from track2_voice.lipsync import LipSync  # noqa: E402

VOICED_DB = -45.0
PAUSE_FRAMES = 2  # a word counts when at least this many silent frames come before its onset
MAX_OFFSET = 6


def replay_lead(scene: str) -> dict:
    backend, lips = ReplayBackend(scene), LipSync()
    voiced, pieces = [], []
    while not backend.finished:
        r = backend.step(silence())
        lips.update(r.pcm)
        if r.text:
            pieces.append(len(voiced))
        voiced.append(lips.last_db >= VOICED_DB)
    onsets = [
        j
        for j in range(PAUSE_FRAMES, len(voiced))
        if voiced[j] and not any(voiced[j - PAUSE_FRAMES : j])
    ]
    leads = []
    for j in onsets:  # the piece nearest each onset after a pause says that word
        k = min(pieces, key=lambda p: abs(p - j), default=None)
        if k is not None and abs(j - k) <= MAX_OFFSET:
            leads.append(j - k)
    return {
        "lead_frames": int(np.median(leads)) if leads else None,
        "words": len(leads),
        "leads": leads,
    }


def _offset(returned: list[int | None], sampled: list[int]) -> int | None:
    """The offset o with returned[s] == sampled[s - o] for every step that returned a token."""
    for o in range(MAX_OFFSET + 1):
        pairs = [(r, sampled[s - o]) for s, r in enumerate(returned) if r is not None and s >= o]
        if len(pairs) >= 8 and all(a == b for a, b in pairs):
            return o
    return None


def model_lead(name: str, repo: str, steps: int) -> dict:
    from track2_voice.backends import create_backend

    cfg = VoiceConfig.model_validate({"backend": name, name: {"hf_repo": repo}})
    backend = create_backend(cfg)
    backend.start()
    text_sampled: list[int] = []
    audio_sampled: list[int] = []
    text_out: list[int | None] = []
    audio_out: list[int | None] = []
    if name == "mlx":
        gen = backend.gen
        gen.on_text_hook = lambda t: text_sampled.append(int(np.array(t).reshape(-1)[0]))
        gen.on_audio_hook = lambda a: audio_sampled.append(int(np.array(a).reshape(-1)[0]))
        step, last = gen.step, gen.last_audio_tokens

        def wrapped_step(*a, **k):
            out = step(*a, **k)
            text_out.append(int(np.array(out[0]).reshape(-1)[0]))
            return out

        def wrapped_last():
            tokens = last()
            audio_out.append(None if tokens is None else int(np.array(tokens).reshape(-1)[0]))
            return tokens

        gen.step, gen.last_audio_tokens = wrapped_step, wrapped_last
    else:
        gen = backend.lm_gen
        gen.on_text_hook = lambda t: text_sampled.append(int(t.reshape(-1)[0]))
        gen.on_audio_hook = lambda a: audio_sampled.append(int(a.reshape(-1)[0]))
        step = gen.step

        def wrapped(*a, **k):
            out = step(*a, **k)
            tokens = out[0] if isinstance(out, tuple) else out
            text_out.append(None if tokens is None else int(tokens[0, 0, 0]))
            audio_out.append(None if tokens is None else int(tokens[0, 1, 0]))
            return out

        gen.step = wrapped
    for _ in range(steps):
        backend.step(silence())
    backend.close()
    o_text, o_audio = _offset(text_out, text_sampled), _offset(audio_out, audio_sampled)
    lead = None if o_text is None or o_audio is None else o_audio - o_text
    return {"lead_frames": lead, "text_offset": o_text, "audio_offset": o_audio, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["replay", "mlx", "torch"], default="replay")
    ap.add_argument("--scene", default="greeting")
    ap.add_argument("--hf-repo", help="checkpoint directory (mlx, torch)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument(
        "--json", help="where to write (default benchmarks/results/text_lead_BACKEND.json)"
    )
    args = short_mode.parse(ap, steps=15)
    if args.json is None:
        default = ROOT / "benchmarks" / "results" / f"text_lead_{args.backend}.json"
        args.json = short_mode.short_dir() / default.name if args.short else default
    if args.backend == "replay":
        result = replay_lead(args.scene)
    else:
        if not args.hf_repo:
            print(
                "--hf-repo: expected a checkpoint directory for --backend mlx|torch",
                file=sys.stderr,
            )
            sys.exit(2)
        result = model_lead(args.backend, args.hf_repo, args.steps)
    result.update(
        backend=args.backend,
        configured=TEXT_LEAD_FRAMES[args.backend],
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    print(
        f"text lead ({args.backend}): {result['lead_frames']} frame(s)"
        f" (face.visemes.text_lead_frames default: {result['configured']})"
    )
    out = Path(args.json)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
