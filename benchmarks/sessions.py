"""How many conversations one model serves: batched step time vs active sessions.

For each N in --sessions, a ``BatchEngine`` with N slots runs N sessions (each hearing its
own sound) and times its steps (Mimi encode + one batched LM step + Mimi decode, the whole
80 ms frame's model work). Reported per N: step p50/p99, whether p99 fits the 80 ms frame,
and ratio(N) = step_p50(N) / (N x step_p50(1)), the cost of a batched session relative to a
session alone (1.0: batching buys nothing; the target here is <= 0.3 at N = 8). A second
table keeps the slots fixed at max(N) with N of them active: what idle slots cost.

With --wire, N real clients (WebSocket, Opus, real-time pace) hold sessions with the model
server on loopback: time to first audio per session and reply lag under load.

On this CPU (default: a tiny random checkpoint written on the fly)::

    python benchmarks/sessions.py [--sessions 1,2,4,8,16,32] [--steps 40] [--wire 1,4,8]

On a GPU host, full size (``creature checkpoint random DIR --size full`` first)::

    python benchmarks/sessions.py --checkpoint DIR --device cuda --dtype bfloat16 \\
        --sessions 1,8,16,32,48,64 --wire 8,32,48
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402

FRAME_MS = 80.0
WARMUP_STEPS = 5  # per N, left out of the figures (allocation, kernel choice)


def pct(xs, q: float) -> float:
    return round(float(np.percentile(np.asarray(xs, dtype=float), q)), 3) if len(xs) else 0.0


def sound(seed: int, n_frames: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames * 1920) / 24000
    if seed % 2:
        x = np.sin(2 * np.pi * (150 + 37 * seed) * t)
    else:
        x = rng.standard_normal(t.size)
    return ((0.02 + 0.03 * (seed % 5)) * x).astype(np.float32).reshape(n_frames, 1920)


def start_sessions(eng, active: list[int], frames: int) -> dict[int, np.ndarray]:
    from track2_voice.model_server.options import SlotSampling

    for i in active:
        eng.reset_slot(i, SlotSampling(seed_text=i, seed_audio=i))
    return {i: sound(i, frames) for i in active}


def timed_steps(eng, inputs: dict[int, np.ndarray], start: int, steps: int) -> list[float]:
    times = []
    for t in range(start, start + steps):
        batch = {i: x[t % len(x)] for i, x in inputs.items()}
        t0 = time.perf_counter()
        eng.step(batch)
        if eng.device.type == "cuda":
            import torch

            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


@dataclass
class EngineTimings:
    """Step times per N. sized: an engine of N slots per N; else one engine of max(N) slots
    with N active.

    rounds > 1 (CPU): every engine exists at once (each on its own copy of the tiny model)
    and the N values take turns, ``steps`` steps each per round, so that a change in the
    machine's load hits every N alike; each round's ratio uses that round's single-session
    time. rounds == 1 (a GPU and the full model): one N after the other, one model."""

    model: Any
    device: str
    sessions: list[int]
    steps: int
    rounds: int
    sized: bool
    engines: dict = field(default_factory=dict)  # N (or "fixed") -> its BatchEngine
    inputs: dict = field(default_factory=dict)  # N -> each active slot's sound
    times: dict[int, list[float]] = field(default_factory=dict)
    per_round: dict[int, list[float]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.times = {n: [] for n in self.sessions}
        self.per_round = {n: [] for n in self.sessions}

    def new_engine(self, n: int):
        from track2_voice.model_server.engine import BatchEngine

        slots = n if self.sized else max(self.sessions)
        m = self.model if self.rounds == 1 else copy.deepcopy(self.model)
        if not self.sized:
            if "fixed" not in self.engines:
                self.engines["fixed"] = BatchEngine(m, slots, self.device)
            return self.engines["fixed"]
        return BatchEngine(m, slots, self.device)

    def warmed_engine(self, n: int):
        """N's engine, its sessions started and warmed up on first use."""
        if n not in self.inputs:
            eng = self.engines.get(n) or self.new_engine(n)
            self.engines[n] = eng
            frames = WARMUP_STEPS + self.steps * self.rounds
            self.inputs[n] = start_sessions(eng, list(range(n)), frames)
            timed_steps(eng, self.inputs[n], 0, WARMUP_STEPS)
        return self.engines[n]

    def run_round(self, r: int) -> None:
        for n in self.sessions:
            if n in self.errors:
                continue
            try:
                eng = self.warmed_engine(n)
                ts = timed_steps(eng, self.inputs[n], WARMUP_STEPS + r * self.steps, self.steps)
            except RuntimeError as e:  # out of memory on a GPU: report it, stop growing
                self.errors[n] = str(e).splitlines()[0]
                continue
            self.times[n] += ts
            self.per_round[n].append(float(np.median(ts)))
            if self.rounds == 1 and self.sized:
                self.engines.pop(n).close()

    def close(self) -> None:
        for eng in {id(e): e for e in self.engines.values()}.values():
            eng.close()

    def row(self, n: int) -> dict:
        if n in self.errors:
            return {"sessions": n, "error": self.errors[n]}
        times = self.times[n]
        row = {
            "sessions": n,
            "slots": n if self.sized else max(self.sessions),
            "step_ms_p50": pct(times, 50),
            "step_ms_p99": pct(times, 99),
            "within_frame": pct(times, 99) < FRAME_MS,
        }
        if self.sized and self.per_round.get(1):
            ratios = [m / (n * s) for m, s in zip(self.per_round[n], self.per_round[1])]
            row["ratio"] = round(float(np.median(ratios)), 3)
        return row


def engine_rows(model, device: str, sessions: list[int], steps: int, rounds: int, sized: bool):
    """One table row per N (see ``EngineTimings``)."""
    timings = EngineTimings(model, device, sessions, steps, rounds, sized)
    for r in range(rounds):
        timings.run_round(r)
    timings.close()
    return [timings.row(n) for n in sessions]


async def wire_run(url: str, n: int, seconds: float) -> list[dict]:
    import sphn

    from track2_voice.backends.moshi_protocol import open_session

    frames = int(seconds * 12.5)

    async def one(i: int) -> dict:
        ws, _ = await open_session(url)
        w = sphn.OpusStreamWriter(24000)
        pages = [p for p in (w.append_pcm(f) for f in sound(100 + i, frames)) if len(p)]
        sent, got = [], []

        async def rx():
            async for m in ws:
                if m[0] == 1:
                    got.append(time.monotonic())

        task = asyncio.create_task(rx())
        t0 = time.monotonic()
        await asyncio.sleep(0.08 * i / max(1, n))  # spread the clients' phases over a frame
        for k, p in enumerate(pages):
            await ws.send(b"\x01" + p)
            sent.append(time.monotonic())
            await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.08 - time.monotonic()))
        await asyncio.sleep(0.5)
        task.cancel()
        await ws.close()
        # reply j answers input j + 1 (the acoustic delay's first step yields nothing)
        lag = [(got[j] - sent[j + 1]) * 1e3 for j in range(min(len(got), len(sent) - 1))]
        return {
            "sent": len(sent),
            "received": len(got),
            "first_audio_ms": round((got[0] - sent[0]) * 1e3, 1) if got else None,
            "lag_ms_p50": pct(lag, 50),
            "lag_ms_p99": pct(lag, 99),
        }

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def server_process(ckpt: str, n: int, device: str, dtype: str, threads: int | None):
    """``creature model-server`` in its own process (as deployed: the clients' Opus work and
    the server's do not share an interpreter). Returns (process, url, healthz url)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [
        sys.executable, "-m", "orchestrator.cli", "model-server", "--checkpoint", ckpt,
        "--slots", str(n), "--port", "0", "--open", "--device", device, "--dtype", dtype,
    ]  # fmt: skip
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    if not line.startswith("model server listening: "):
        proc.kill()
        log.seek(0)
        raise RuntimeError(f"the model server did not start: {line!r}\n{log.read()[-2000:]}")
    url = line.split(": ", 1)[1].strip()
    return proc, url, url.replace("ws://", "http://").replace("/api/chat", "/healthz")


def wire_rows(ckpt, device, dtype, counts, seconds, threads):
    import urllib.request

    rows = []
    for n in counts:
        proc, url, health_url = server_process(ckpt, n, device, dtype, threads)
        try:
            per = asyncio.run(wire_run(url, n, seconds))
            st = json.loads(urllib.request.urlopen(health_url, timeout=10).read())
        finally:
            proc.terminate()
            proc.wait(10)
        firsts = [p["first_audio_ms"] for p in per if p["first_audio_ms"] is not None]
        rows.append(
            {
                "sessions": n,
                "served": sum(1 for p in per if p["received"] >= p["sent"] - 2),
                "first_audio_ms_p50": pct(firsts, 50),
                "first_audio_ms_max": max(firsts) if firsts else None,
                "lag_ms_p50": pct([p["lag_ms_p50"] for p in per], 50),
                "lag_ms_p99": max(p["lag_ms_p99"] for p in per),
                "server_step_ms_p50": st["step_ms_p50"],
                "server_step_ms_p99": st["step_ms_p99"],
                "late_steps": st["late_steps"],
            }
        )
    return rows


def kv_bytes_per_slot(model, device: str) -> int:
    from track2_voice.model_server.engine import BatchEngine

    eng = BatchEngine(model, 1, device, warmup=False)
    try:
        return eng.kv_bytes_per_slot()
    finally:
        eng.close()


def print_table(title: str, rows: list[dict], keys: list[str]) -> None:
    print(title)
    print("  " + "  ".join(f"{k:>18s}" for k in keys))
    for r in rows:
        print("  " + "  ".join(f"{str(r.get(k, '')):>18s}" for k in keys))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", help="a checkpoint directory (default: tiny, written now)")
    ap.add_argument("--sessions", default="1,2,4,8,16,32", help="N values, comma-separated")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per N and round")
    ap.add_argument(
        "--rounds", type=int, help="rounds of interleaved N (default: 5 on cpu, 1 on cuda)"
    )
    ap.add_argument("--wire", default="", help="N values for the end-to-end run (e.g. 1,4,8)")
    ap.add_argument("--wire-seconds", type=float, default=6.0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: 1 on cpu, torch's on cuda)"
    )
    ap.add_argument("--compile", action="store_true", help="keep moshi's torch.compile on CPU")
    ap.add_argument("--no-fixed", action="store_true", help="skip the fixed-slots table")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "sessions.json"))
    return short_mode.parse(
        ap, out="json", sessions="1,2", steps=3, rounds=1, wire="1", wire_seconds=2.0
    )


def set_up_torch(args: argparse.Namespace) -> str:
    """Torch as the run wants it: compile off on CPU (before moshi is imported), the thread
    count; returns the dtype's name."""
    if args.device == "cpu" and not args.compile:
        os.environ.setdefault("NO_TORCH_COMPILE", "1")  # before moshi is imported

    import torch

    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    return args.dtype or ("bfloat16" if args.device == "cuda" else "float32")


def measure(args, ckpt: str, rounds: int, dtype_name: str) -> dict:
    """The KV cache per slot, both engine tables and the wire table, on one set of weights."""
    import torch

    from track2_voice.model_server.engine import load_model

    sessions = [int(x) for x in args.sessions.split(",") if x]
    wire = [int(x) for x in args.wire.split(",") if x]
    load_before = list(os.getloadavg())
    model = load_model(ckpt, args.device, getattr(torch, dtype_name))  # for every engine
    kv = kv_bytes_per_slot(model, args.device)
    sized = engine_rows(model, args.device, sessions, args.steps, rounds, sized=True)
    fixed = (
        []
        if args.no_fixed
        else engine_rows(model, args.device, sessions, args.steps, rounds, sized=False)
    )
    threads = torch.get_num_threads() if args.device == "cpu" else None
    wire_res = (
        wire_rows(ckpt, args.device, dtype_name, wire, args.wire_seconds, threads) if wire else []
    )
    return {
        "sized": sized,
        "fixed_slots": fixed,
        "wire": wire_res,
        "kv_cache_bytes_per_slot": kv,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
    }


def measure_on_checkpoint(args, rounds: int, dtype_name: str) -> dict:
    """``measure`` on ``--checkpoint``, or on a tiny random one written for the run."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            from track2_voice.devtools.checkpoint_random import write_random_checkpoint

            write_random_checkpoint(tmp, "tiny", seed=11)
            ckpt = tmp
        return measure(args, ckpt, rounds, dtype_name)


def figures(args, rounds: int, dtype_name: str, measured: dict) -> dict:
    import torch

    sized = measured["sized"]
    within = [r["sessions"] for r in sized if r.get("within_frame")]
    return {
        "benchmark": "sessions",
        "checkpoint": args.checkpoint or "tiny (random, dim 64, 1 layer)",
        "device": args.device,
        "dtype": dtype_name,
        "torch_threads": torch.get_num_threads(),
        "torch_compile": args.compile or args.device != "cpu",
        "steps_per_n_and_round": args.steps,
        "rounds": rounds,
        "sized": sized,
        "fixed_slots": measured["fixed_slots"],
        "wire": measured["wire"],
        "kv_cache_bytes_per_slot": measured["kv_cache_bytes_per_slot"],
        "ratio_at_8": next((r.get("ratio") for r in sized if r.get("sessions") == 8), None),
        "most_sessions_within_frame": max(within) if within else 0,
        "load_average_before": measured["load_average_before"],
        "load_average_after": measured["load_average_after"],
        "cpu_count": os.cpu_count(),
    }


def print_tables(result: dict, sessions: list[int]) -> None:
    keys = ["sessions", "slots", "step_ms_p50", "step_ms_p99", "within_frame", "ratio"]
    print_table("slots = sessions (batched step per 80 ms frame):", result["sized"], keys)
    if result["fixed_slots"]:
        print_table(f"slots fixed at {max(sessions)}, N active:", result["fixed_slots"], keys[:-1])
    if result["wire"]:
        wkeys = ["sessions", "served", "first_audio_ms_p50", "first_audio_ms_max", "lag_ms_p50",
                 "lag_ms_p99", "server_step_ms_p99"]  # fmt: skip
        print_table("over the wire (real-time clients on loopback):", result["wire"], wkeys)
    print(
        f"ratio batched(8) / (8 x single): {result['ratio_at_8']}; most sessions with step p99"
        f" < 80 ms: {result['most_sessions_within_frame']}; {result['device']}"
        f" {result['dtype']}, {result['torch_threads']} torch threads; LM KV cache"
        f" {result['kv_cache_bytes_per_slot'] / 2**20:.1f} MiB per slot; load average"
        f" {result['load_average_before']} -> {result['load_average_after']}"
    )


def main() -> int:
    args = parse_args()
    dtype_name = set_up_torch(args)
    rounds = args.rounds or (5 if args.device == "cpu" else 1)
    measured = measure_on_checkpoint(args, rounds, dtype_name)
    result = figures(args, rounds, dtype_name, measured)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result, [int(x) for x in args.sessions.split(",") if x])
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
