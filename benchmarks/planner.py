"""Planner benchmark: the rules alone, and each planner policy, on the two-sided corpus.

Each exchange of benchmarks/dialogue_corpus/ is played through the real brain (dialogue, intent
watcher, dispatcher, outbox) with the real planner client against a chat-completions endpoint:
the user's words as transcript events, then the creature's words one a frame, then quiet frames;
then it waits (bounded) for the planner's verdicts. A robot in the process reports every call
``succeeded`` at once, so chained calls go out. Scored with Full-Duplex-Bench v3's tool-use
metrics (benchmarks/dialogue.py: tool-selection F1, argument accuracy, strict pass rate), plus
the time from the end of the creature's sentence to each call (what the planner adds to it), and
the fast loop's overhead with the planner on and off in the same run.

    python benchmarks/planner.py [--llm-url URL] [--model NAME] [--parts heldout,challenge]
                                 [--short] [--out FILE]

Without ``--llm-url`` it starts llama.cpp's server on a tiny random-weight model (``creature
planner setup`` builds it): the proposals are then random within the narrowed tool, so the
scores say how the harness and the policies behave, not how good a planner is.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from orchestrator.brain.brain import Brain  # noqa: E402
from orchestrator.brain.events import PlannerConsulted, PlannerDecision, ToolCallSent  # noqa: E402
from orchestrator.brain.outbox import Outbox  # noqa: E402
from orchestrator.cli.commands.planner import PLANNER_ENV, server_command, write_tiny  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.data_files import load_affect_map  # noqa: E402
from orchestrator.runtime.planner_client import PlannerClient  # noqa: E402
from track2_voice.events import FrameEvent, UserWord  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "planner.json"
MODES = ("rules", "augment", "confirm", "planner")
WORD_S, GAP_S, TAIL_S, FRAME_S = 0.3, 0.4, 4.0, 0.08  # as benchmarks/dialogue.py plays them


class SimClock:
    """The brain's clock in simulated time (the dialogue waits on it); the planner's own
    latency and bounds stay in real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _dialogue_bench():
    spec = importlib.util.spec_from_file_location(
        "dialogue_bench", ROOT / "benchmarks" / "dialogue.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dialogue_bench"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


class SucceedingRobot:
    """A body in the process that does every call at once (the benchmark scores decisions)."""

    name = "bench"

    def __init__(self) -> None:
        self.brain: Brain | None = None

    def send(self, message: dict) -> bool:
        if message.get("type") == "tool_call":
            loop = asyncio.get_running_loop()
            loop.call_soon(self._finish, message["id"])
        return True

    def _finish(self, call_id: str) -> None:
        d = self.brain.dispatcher
        for status in ("accepted", "succeeded"):
            try:
                d.on_status(call_id, status, None, "bench", self)
            except Exception:
                return


def frame(i: int, text: str | None, mouth: float) -> FrameEvent:
    import numpy as np

    pcm = np.zeros(1920, np.float32)
    return FrameEvent(index=i, t=time.monotonic(), mouth=mouth, rms_db=-30.0, text=text, pcm=pcm)


def _overrides(
    mode: str, url: str | None, model: str, tmp: Path, wait_s: float, choice: str
) -> dict:
    """The run's settings: a fresh outbox, no rate limit, and the planner policy under test."""
    overrides = {
        "slow_loop.robot.port": 0,
        "slow_loop.outbox.path": str(tmp / f"outbox-{time.monotonic_ns()}.sqlite3"),
        "slow_loop.safety.rate_limit_calls": 1000,
    }
    if mode != "rules":
        overrides.update(
            {
                "slow_loop.planner.url": url,
                "slow_loop.planner.model": model,
                "slow_loop.planner.policy": mode,
                "slow_loop.planner.timeout_s": wait_s,
                "slow_loop.planner.confirm_wait_s": wait_s,
                "slow_loop.planner.tool_choice": choice,
            }
        )
    return overrides


def _connect_planner(brain: Brain, cfg) -> PlannerClient | None:
    """The real planner client on the brain's deliberation (none in the rules-only mode)."""
    d = brain.deliberation
    client = PlannerClient(cfg.planner, d.read, d.answered) if d is not None else None
    if d is not None:
        d.port = client
    return client


async def _hear_user(brain: Brain, clock: SimClock, words: list[str]) -> None:
    """The user's words as final transcript words, one every WORD_S of simulated time."""
    for n, word in enumerate(words):
        clock.now = (n + 1) * WORD_S
        await brain.handle(
            UserWord(text=word, start=n * WORD_S, end=(n + 0.8) * WORD_S, final=True)
        )


async def _hear_creature(
    brain: Brain, clock: SimClock, start: float, pieces: list[str]
) -> float | None:
    """The creature's words one a frame, then quiet frames; returns when (real time) its
    sentence had been heard."""
    n_frames = len(pieces) + int(TAIL_S / FRAME_S)
    said_end = None
    for i in range(n_frames):
        clock.now = start + i * FRAME_S
        if i < len(pieces):
            await brain.handle(frame(i, " " + pieces[i], 0.5))
        else:
            await brain.handle(frame(i, None, 0.0))
        if i == len(pieces) - 1:
            said_end = time.monotonic()  # the creature's sentence has been heard
    return said_end


async def _await_planner(client: PlannerClient | None, d, wait_s: float) -> None:
    """The planner's last word, then the calls it let through (bounded)."""
    if client is not None:
        deadline = time.monotonic() + wait_s + 1.0
        while time.monotonic() < deadline and (
            (client._task is not None and not client._task.done()) or d.held
        ):
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # chained calls after a success


def _sent_calls(
    published: list, walls: list[float], slots_known, said_end: float | None
) -> tuple[list, list[float]]:
    """Each tool call sent, as (action, its known slots), and its delay after the sentence."""
    calls = []
    delays = []
    for e, wall in zip(published, walls):
        if isinstance(e, ToolCallSent):
            slots = tuple(
                sorted((k, v) for k, v in e.arguments.items() if k in slots_known and v is not None)
            )
            calls.append((e.arguments["action"], slots))
            delays.append(max(0.0, wall - (said_end or wall)) * 1000.0)
    return calls, delays


async def play(
    ex, mode: str, url: str | None, model: str, tmp: Path, wait_s: float, choice: str = "auto"
) -> dict:
    overrides = _overrides(mode, url, model, tmp, wait_s, choice)
    cfg = load_config(overrides=overrides).slow_loop
    published: list = []
    walls: list[float] = []  # when each event was published, in real time

    def publish(ev) -> None:
        published.append(ev)
        walls.append(time.monotonic())

    outbox = Outbox(Path(overrides["slow_loop.outbox.path"]))
    clock = SimClock()
    brain = Brain(cfg, load_affect_map(), outbox, publish, clock)
    robot = SucceedingRobot()
    robot.brain = brain
    brain.dispatcher.robot_connected(robot)
    d = brain.deliberation
    client = _connect_planner(brain, cfg)
    words = (ex.user or "").split()
    await _hear_user(brain, clock, words)
    start = len(words) * WORD_S + GAP_S if words else 0.0
    said_end = await _hear_creature(brain, clock, start, (ex.creature or "").split())
    await _await_planner(client, d, wait_s)
    calls, delays = _sent_calls(published, walls, brain.dispatcher.schema.slots, said_end)
    asked = [e for e in published if isinstance(e, PlannerConsulted)]
    decisions = [e.decision for e in published if isinstance(e, PlannerDecision)]
    if client is not None:
        await client.aclose()
        d.close()
    outbox.close()
    return {
        "calls": tuple(calls),
        "delays_ms": delays,
        "verdicts": [e.verdict for e in asked],
        "latency_ms": [e.latency_ms for e in asked if e.verdict in ("calls", "none")],
        "decisions": decisions,
    }


def overhead(url: str | None, model: str, tmp: Path, frames: int) -> dict:
    """The fast loop (replay backend, greeting scene, deadlines) with the slow loop and the
    planner on, against the same run with the planner off, alternated."""
    import numpy as np

    from orchestrator.bus import Bus
    from orchestrator.runtime.brain_host import BrainHost
    from track2_voice.audio.devices import FileSource, write_wav
    from track2_voice.backends.replay import ReplayBackend
    from track2_voice.frames import FRAME_SAMPLES
    from track2_voice.loop import FastLoop

    wav = tmp / "silence.wav"
    write_wav(wav, np.zeros(frames * FRAME_SAMPLES, np.float32))
    out: dict[str, list] = {"off": [], "on": []}
    for rep in range(2):
        for mode in ("off", "on"):
            hub = Bus()
            over = {
                "slow_loop.robot.port": 0,
                "slow_loop.outbox.path": str(tmp / f"ov-{mode}-{rep}.sqlite3"),
            }
            if mode == "on":
                over.update({"slow_loop.planner.url": url, "slow_loop.planner.model": model})
            slow = BrainHost(load_config(overrides=over).slow_loop, hub).start()
            loop = FastLoop(ReplayBackend("greeting"), FileSource(wav, realtime=False), events=hub)
            try:
                stats = loop.run()
            finally:
                loop.close()
                slow.stop()
            s = stats.summary()
            out[mode].append(
                {
                    "missed": stats.missed,
                    "overhead_ms_p99": s.get("overhead_ms_p99"),
                    "overhead_ms_p50": s.get("overhead_ms_p50"),
                }
            )
    return out


def tiny_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    from orchestrator.state_dir import default_state_dir  # where `creature planner setup` built it

    env = PLANNER_ENV.path(default_state_dir())
    python = PLANNER_ENV.python(env)
    model = tmp / "tiny.gguf"
    write_tiny(python, model)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        server_command(python, model, "127.0.0.1", port, 8192),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the tiny llama.cpp server did not start")


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm-url", help="chat-completions base URL (default: a tiny local server)")
    ap.add_argument("--model", default="local", help="model name sent to --llm-url")
    ap.add_argument("--parts", default="heldout,challenge", help="corpus parts, comma-separated")
    ap.add_argument("--wait-s", type=float, default=30.0, help="per planner answer")
    ap.add_argument(
        "--tool-choice",
        choices=("auto", "required"),
        default="auto",
        help="slow_loop.planner.tool_choice (required: for models that never pick a tool)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    return short_mode.parse(ap, out="out")  # --short: 4 exchanges, a shorter overhead run


def _count(into: dict, items) -> None:
    for item in items:
        into[item] = into.get(item, 0) + 1


def _run_mode(bench, corpus: list, mode: str, url: str, a, tmp: Path) -> dict:
    """Every exchange played under one policy, scored and timed."""
    tally = bench.Tally()
    delays, latency, verdicts, decisions = [], [], {}, {}
    t0 = time.monotonic()
    for ex in corpus:
        got = asyncio.run(play(ex, mode, url, a.model, tmp, a.wait_s, a.tool_choice))
        tally.add(ex, got["calls"])
        delays += got["delays_ms"]
        latency += got["latency_ms"]
        _count(verdicts, got["verdicts"])
        _count(decisions, got["decisions"])
    return {
        **tally.figures(),
        "sentence_end_to_call_ms_p50": bench.pct(delays, 50),
        "sentence_end_to_call_ms_p90": bench.pct(delays, 90),
        "planner_latency_ms_p50": bench.pct(latency, 50),
        "planner_latency_ms_p90": bench.pct(latency, 90),
        "verdicts": verdicts,
        "decisions": decisions,
        "wall_s": round(time.monotonic() - t0, 1),
    }


def _print_mode(mode: str, m: dict) -> None:
    print(
        f"{mode:8s} P {m['tool_precision']} R {m['tool_recall']} F1 {m['tool_f1']} "
        f"args {m['argument_accuracy']} strict {m['strict_pass_rate']}  "
        f"sentence->call p50 {m['sentence_end_to_call_ms_p50']} ms  "
        f"planner p50 {m['planner_latency_ms_p50']} ms  {m['verdicts']}",
        flush=True,
    )


def _report_head(a, proc, url: str, parts: list[str], corpus: list) -> dict:
    return {
        "endpoint": "tiny random-weight llama.cpp (local)" if proc else url,
        "model": a.model,
        "tool_choice": a.tool_choice,
        "parts": parts,
        "exchanges": len(corpus),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        },
        "modes": {},
    }


def _measure(bench, corpus: list, a, proc, url: str, parts: list[str], tmp: Path) -> dict:
    """Each policy on the corpus, then the fast loop's overhead with the planner off and on."""
    report = _report_head(a, proc, url, parts, corpus)
    for mode in MODES:
        report["modes"][mode] = _run_mode(bench, corpus, mode, url, a, tmp)
        _print_mode(mode, report["modes"][mode])
    report["fast_loop"] = overhead(url, a.model, tmp, 150 if a.short else 400)
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    for mode, runs in report["fast_loop"].items():
        print(f"fast loop, planner {mode}: {runs}")
    return report


def main() -> int:
    a = _parse_args()
    bench = _dialogue_bench()
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    corpus = [ex for ex in bench.load(bench.CORPUS) if ex.part in parts]
    if a.short:
        corpus = corpus[:4]
    tmp = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    proc = None
    url = a.llm_url
    if url is None:
        proc, url = tiny_server(tmp)
    try:
        report = _measure(bench, corpus, a, proc, url, parts, tmp)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
