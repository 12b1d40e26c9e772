"""What the remote backend adds per 80 ms frame, against the official moshi.server on loopback.

Starts ``moshi.server`` (through ``track2_voice.devtools.moshi_server_cpu``) with a tiny random
checkpoint, holds one real-time session through the remote backend, and reports:
  - step_ms: the fast loop's cost of ``RemoteBackend.step`` (enqueue + jitter-buffer pop);
  - encode_ms / decode_ms: Ogg/Opus work on the network thread per frame;
  - round_trip_ms: user frame sent -> the reply frame it caused has arrived and is buffered;
  - server_step_ms: the server's own "frame handled in" time (Mimi + LM + its Opus + send);
  - overhead_ms = round_trip - server_step: wire, both Opus ends, framing and alignment.
The Python server answers input frame k+1 with output frame k (LMGen's first step yields
nothing), so reply j is paired with send j+1.

    python benchmarks/remote_loop.py [--frames 250] [--dim 64 --layers 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from track2_voice.audio.devices import load_audio  # noqa: E402
from track2_voice.backends.remote import RemoteBackend  # noqa: E402
from track2_voice.config import VoiceConfig  # noqa: E402
from track2_voice.devtools.checkpoint_torch import write_tiny_torch_checkpoint  # noqa: E402
from track2_voice.devtools.moshi_server_cpu import LocalMoshiServer  # noqa: E402
from track2_voice.frames import FRAME_SAMPLES, FRAME_SECONDS  # noqa: E402

REPLY_LAG = 1  # LMGen's acoustic delay: reply j answers input j + REPLY_LAG
WARMUP_FRAMES = 10  # left out of the figures (connection and caches settling)


def pct(xs, q: float) -> float:
    return round(float(np.percentile(np.asarray(xs, dtype=float), q)), 3) if len(xs) else 0.0


def figures(xs) -> dict:
    return {"p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99), "n": len(xs)}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=250, help="frames to send (80 ms each)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "remote_loop.json"))
    return short_mode.parse(ap, out="json", frames=25)


def speech_frames(n: int) -> np.ndarray:
    """The recorded utterances end to end, looped or cut to ``n`` frames."""
    speech = np.concatenate(
        [load_audio(p) for p in sorted((ROOT / "benchmarks" / "utterances").glob("*.wav"))]
    )
    return np.resize(speech, n * FRAME_SAMPLES).reshape(n, FRAME_SAMPLES)


def paced_steps(backend: RemoteBackend, speech: np.ndarray) -> list[float]:
    """One frame every 80 ms, as the fast loop would: each ``step``'s cost, ms."""
    step_ms = []
    t0 = time.monotonic()
    for k in range(len(speech)):
        due = t0 + (k + 1) * FRAME_SECONDS
        time.sleep(max(0.0, due - time.monotonic()))
        t = time.perf_counter()
        backend.step(speech[k])
        step_ms.append((time.perf_counter() - t) * 1000.0)
    return step_ms


def session(args, speech: np.ndarray) -> tuple[RemoteBackend, list[float], str]:
    """One real-time session with moshi.server on a tiny random checkpoint: the closed
    backend (its timings), the step costs and the server's log."""
    with tempfile.TemporaryDirectory() as tmp:
        write_tiny_torch_checkpoint(tmp, dim=args.dim, layers=args.layers, seed=11)
        with LocalMoshiServer(tmp) as srv:
            cfg = VoiceConfig(backend="remote")
            cfg.remote.url = srv.url
            backend = RemoteBackend(cfg)
            backend.start()
            step_ms = paced_steps(backend, speech)
            time.sleep(0.5)  # the last replies
            backend.close()
            server_log = srv.log_path.read_text(errors="replace") if srv.log_path else ""
    return backend, step_ms, server_log


def round_trips(sent: list[float], recv: list[float]) -> list[float]:
    """Reply j paired with send j + REPLY_LAG, ms."""
    return [
        (recv[j] - sent[j + REPLY_LAG]) * 1000.0
        for j in range(min(len(recv), len(sent) - REPLY_LAG))
    ]


def result_of(args, backend: RemoteBackend, step_ms: list[float], server_log: str) -> dict:
    tm = backend.timing
    rtt = round_trips(list(tm.sent_at), list(tm.received_at))
    server = [float(x) for x in re.findall(r"frame handled in ([0-9.]+)ms", server_log)]
    w = WARMUP_FRAMES
    rtt_f, server_f = figures(rtt[w:]), figures(server[w:])
    return {
        "benchmark": "remote_loop",
        "checkpoint": {"dim": args.dim, "layers": args.layers},
        "frames_sent": backend.sent_frames,
        "frames_received": backend.jitter.stats.received,
        "step_ms": figures(step_ms[w:]),
        "encode_ms": figures(list(tm.encode_ms)[w:]),
        "decode_ms": figures(list(tm.decode_ms)[w:]),
        "round_trip_ms": rtt_f,
        "server_step_ms": server_f,
        "overhead_ms_p50": round(rtt_f["p50"] - server_f["p50"], 3),
        # queueing at a loaded server inflates the round trip; the client's own CPU per frame
        # (step + Opus encode + decode, p50) and the best round trip bound the true overhead
        "client_cpu_ms_p50": round(
            pct(step_ms[w:], 50)
            + pct(list(tm.encode_ms)[w:], 50)
            + pct(list(tm.decode_ms)[w:], 50),
            3,
        ),
        "round_trip_min_ms": round(min(rtt[w:]), 3) if rtt[w:] else None,
        "server_step_min_ms": round(min(server[w:]), 3) if server[w:] else None,
        "load_average": list(os.getloadavg()),
        "jitter": backend.stats(),
    }


def print_figures(result: dict) -> None:
    for k in ("step_ms", "encode_ms", "decode_ms", "round_trip_ms", "server_step_ms"):
        f = result[k]
        print(
            f"{k:16s} p50 {f['p50']:8.3f}  p90 {f['p90']:8.3f}  p99 {f['p99']:8.3f}  (n={f['n']})"
        )
    print(f"overhead (round trip - server step), p50: {result['overhead_ms_p50']:.3f} ms")
    print(
        f"client CPU per frame (step + encode + decode), p50: {result['client_cpu_ms_p50']:.3f} ms"
    )
    print(
        f"best round trip {result['round_trip_min_ms']} ms vs best server step "
        f"{result['server_step_min_ms']} ms; load average {result['load_average']}"
    )


def main() -> int:
    args = parse_args()
    backend, step_ms, server_log = session(args, speech_frames(args.frames))
    result = result_of(args, backend, step_ms, server_log)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print_figures(result)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
