"""Dialogue benchmark: calls grounded in both sides of the conversation, scored with
Full-Duplex-Bench v3's tool-use metrics on the two-sided corpus (benchmarks/dialogue_corpus/).

Each exchange is played through the brain's dialogue in simulated time
(``orchestrator.brain.dialogue_play``): the user's words one every 0.3 s as transcript events,
then 0.4 s later the creature's reply one word a frame through the intent watcher, then quiet.
It is played twice: with the transcript on time, and with it 0.8 s late (the user's words reach
the brain after the creature has answered, as a lagging recogniser's would).

Metrics (per part and mode), as Full-Duplex-Bench v3 defines them for tool calls:

* tool-selection precision / recall / F1: calls matched by action name, in order (a multiset);
* argument accuracy: of the matched calls, those whose every slot equals the label;
* strict pass rate: exchanges whose calls equal the label exactly (actions, slots, order);
* acceptance -> call: simulated seconds from the creature's sentence end to the decision (the
  wait for the user's words), and the wall time the dialogue took per reply;
* the user's stop: wall time from publishing a ``user_word`` "stop" on the bus to the robot
  receiving the ``cancel`` of each open call (the real slow loop and robot channel on
  loopback; a robot written from the documented protocol), and the dialogue's own cost per
  user word.

    python benchmarks/dialogue.py [--errors dev|heldout|challenge|all] [--stop-trials N] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import corpus_tsv, short_mode  # noqa: E402
from orchestrator.brain.dialogue import Dialogue, Plan  # noqa: E402
from orchestrator.brain.dialogue_play import Timing, play  # noqa: E402
from orchestrator.brain.dialogue_rules import load_dialogue_rules  # noqa: E402
from orchestrator.brain.intent_rules import load_rules  # noqa: E402
from orchestrator.slow_config import DialogueConfig, IntentConfig  # noqa: E402

CORPUS = ROOT / "benchmarks" / "dialogue_corpus"
RESULTS = ROOT / "benchmarks" / "results" / "dialogue.json"
PARTS = ("dev", "heldout", "challenge")
MODES = {"on_time": Timing(), "transcript_late_0.8s": Timing(transcript_lag_s=0.8)}

Call = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Exchange:
    part: str
    category: str
    user: str | None
    creature: str | None
    calls: tuple[Call, ...]
    line: int


def parse_calls(cell: str, where: str) -> tuple[Call, ...]:
    if cell.strip() == "-":
        return ()
    out = []
    for one in cell.split("|"):
        items = [c.strip() for c in one.split(";") if c.strip()]
        slots = corpus_tsv.slots(items[1:], where)
        out.append((items[0], tuple(sorted(slots))))
    return tuple(out)


def load(directory: Path) -> list[Exchange]:
    out = []
    for part, where, n, (cat, expected, user, creature) in corpus_tsv.rows(directory, PARTS, 4):
        out.append(
            Exchange(
                part,
                cat,
                None if user.strip() == "-" else user,
                None if creature.strip() == "-" else creature,
                parse_calls(expected, where),
                n,
            )
        )
    return out


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


@dataclass
class Tally:
    exchanges: int = 0
    strict: int = 0
    predicted: int = 0
    expected: int = 0
    matched: int = 0
    args_right: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, ex: Exchange, got: tuple[Call, ...]) -> None:
        self.exchanges += 1
        self.predicted += len(got)
        self.expected += len(ex.calls)
        want_left = list(ex.calls)
        matched = 0
        for g in got:  # by action, in order
            j = next((i for i, w in enumerate(want_left) if w[0] == g[0]), None)
            if j is None:
                continue
            w = want_left.pop(j)
            matched += 1
            self.args_right += g[1] == w[1]
        self.matched += matched
        if got == ex.calls:
            self.strict += 1
        else:
            self.errors.append(
                f"[{ex.category}] user {ex.user!r} / creature {ex.creature!r}: "
                f"got {fmt(got)}, want {fmt(ex.calls)}"
            )

    def figures(self) -> dict:
        p = self.matched / self.predicted if self.predicted else None
        r = self.matched / self.expected if self.expected else None
        f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
        return {
            "exchanges": self.exchanges,
            "calls_expected": self.expected,
            "calls_made": self.predicted,
            "tool_precision": _r(p),
            "tool_recall": _r(r),
            "tool_f1": _r(f1),
            "argument_accuracy": _r(self.args_right / self.matched if self.matched else None),
            "strict_pass_rate": _r(self.strict / self.exchanges if self.exchanges else None),
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def fmt(calls: tuple[Call, ...]) -> str:
    return " | ".join(f"{a}{dict(s)}" for a, s in calls) or "nothing"


class LoopbackRobot:
    """A robot written from the protocol in docs/slow_loop.md, on its own thread: it accepts
    and runs every call (``running``, the ids in order) and notes when each cancel arrives
    (``cancels``, perf_counter)."""

    def __init__(self) -> None:
        self.cancels: dict[str, float] = {}
        self.running: list[str] = []
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    async def serve(self, url: str) -> None:
        from websockets.asyncio.client import connect

        async with connect(url) as ws:
            while not self.done.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
                except TimeoutError:
                    continue
                if msg.get("type") == "tool_call":
                    for st in ("accepted", "running"):
                        await ws.send(json.dumps({"type": "status", "id": msg["id"], "status": st}))
                    self.running.append(msg["id"])
                elif msg.get("type") == "cancel":
                    self.cancels.setdefault(msg["id"], time.perf_counter())
                    await ws.send(
                        json.dumps({"type": "status", "id": msg["id"], "status": "cancelled"})
                    )

    def start(self, url: str) -> None:
        self.thread = threading.Thread(target=lambda: asyncio.run(self.serve(url)), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(5)


def wait_until(pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise SystemExit("stop benchmark: timed out")
        time.sleep(0.002)


def stop_bench_config(tmp: str):
    """The slow loop's settings for the stop timing: any port, its own outbox, and no rate
    limit or repeat window to refuse the same calls trial after trial."""
    from orchestrator.config import load_config

    return load_config(
        overrides={
            "slow_loop.robot.port": 0,
            "slow_loop.outbox.path": f"{tmp}/outbox.sqlite3",
            "slow_loop.safety.rate_limit_calls": 100000,
            "slow_loop.intents.repeat_window_s": 0,
        }
    ).slow_loop


def say_two_calls(hub, index: int) -> int:
    """The creature says two commitments, one word a frame; returns the next frame index."""
    import numpy as np

    from track2_voice.events import FrameEvent

    pcm = np.zeros(1920, np.float32)
    for text in ("I'll pick up the red cup.", "I'll open the door."):
        for w in text.split():
            hub.publish(
                FrameEvent(
                    index=index, t=time.monotonic(), mouth=0.5, rms_db=-30, text=" " + w, pcm=pcm
                )
            )
            index += 1
    return index


def stop_trial(hub, robot: LoopbackRobot, n: int) -> float:
    """Once both calls run: the user's "stop" -> the last of their cancels, ms."""
    from track2_voice.events import UserWord

    ids = robot.running[-2:]
    time.sleep(0.05)
    t0 = time.perf_counter()
    hub.publish(UserWord(text="stop", start=n, end=n + 0.3, final=False, source="bench"))
    wait_until(lambda: all(c in robot.cancels for c in ids))
    return (max(robot.cancels[c] for c in ids) - t0) * 1000.0


def stop_times(hub, slow, trials: int) -> list[float]:
    robot = LoopbackRobot()
    robot.start(f"{slow.robot_url}?token={slow.token}&robot=bench")
    out: list[float] = []
    try:
        wait_until(lambda: slow.run_sync(lambda: bool(slow.dispatcher.robots)))
        i = 0
        for n in range(trials):
            before = len(robot.running)
            i = say_two_calls(hub, i)
            wait_until(lambda b=before: len(robot.running) == b + 2)
            out.append(stop_trial(hub, robot, n))
    finally:
        robot.stop()
    return out


def stop_latency(trials: int) -> dict:
    """The user's "stop" -> the robot's cancel, ``trials`` times, two open calls each time."""
    from orchestrator.bus import Bus
    from orchestrator.runtime.brain_host import BrainHost

    with tempfile.TemporaryDirectory() as tmp:
        hub = Bus()
        slow = BrainHost(stop_bench_config(tmp), hub).start()
        try:
            out = stop_times(hub, slow, trials)
        finally:
            slow.stop()
    return {
        "trials": trials,
        "open_calls_per_trial": 2,
        "p50_ms": _r(pct(out, 50)),
        "p99_ms": _r(pct(out, 99)),
        "max_ms": _r(max(out) if out else None),
    }


def word_cost(exchanges: list[Exchange], drules) -> dict:
    """Wall time of ``Dialogue.user_word`` per final word (the stop check and the request
    reading), over every user sentence of the corpus."""
    ms: list[float] = []
    for ex in exchanges:
        if not ex.user:
            continue
        d = Dialogue(DialogueConfig(), drules)
        for k, w in enumerate(ex.user.split()):
            from track2_voice.events import UserWord

            ev = UserWord(text=w, start=k * 0.3, end=k * 0.3 + 0.2)
            t0 = time.perf_counter()
            d.user_word(ev, k * 0.3)
            ms.append((time.perf_counter() - t0) * 1000.0)
    return {"words": len(ms), "p50_ms": _r(pct(ms, 50)), "p99_ms": _r(pct(ms, 99)),
            "max_ms": _r(max(ms))}  # fmt: skip


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--errors", choices=["none", *PARTS, "all"], default="none")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--stop-trials", type=int, default=30, help="0 skips the stop timing")
    return short_mode.parse(ap, out="out", stop_trials=3)


@dataclass
class ModeRun:
    """One timing mode played over the corpus: a tally per part, the simulated waits from
    the creature's sentence end to each plan, and the wall time per exchange."""

    tallies: dict[str, Tally] = field(default_factory=lambda: {p: Tally() for p in PARTS})
    waits: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)


def planned_calls(decided, waits: list[float]) -> tuple[Call, ...]:
    """The calls of every plan decided (slots left unset dropped); each plan's wait goes
    into ``waits``."""
    got: list[Call] = []
    for x in decided:
        if isinstance(x.decision, Plan):
            waits.append(x.at - x.decision.intents[0].t)
            for i in x.decision.intents:
                slots = tuple(sorted((k, v) for k, v in i.slots.items() if v is not None))
                got.append((i.action, slots))
    return tuple(got)


def play_mode(exchanges: list[Exchange], timing: Timing, rules, drules) -> ModeRun:
    cfg, icfg = DialogueConfig(), IntentConfig()
    run = ModeRun()
    for ex in exchanges:
        d = Dialogue(cfg, drules, icfg.repeat_window_s)
        t0 = time.perf_counter()
        decided = play(ex.user, ex.creature, d, rules, icfg, timing)
        run.wall_ms.append((time.perf_counter() - t0) * 1000.0)
        run.tallies[ex.part].add(ex, planned_calls(decided, run.waits))
    return run


def mode_figures(timing: Timing, run: ModeRun, exchanges: list[Exchange]) -> dict:
    n_words = sum(len((e.user or "").split()) + len((e.creature or "").split()) for e in exchanges)
    return {
        "timing": timing.__dict__,
        **{p: run.tallies[p].figures() for p in PARTS},
        "acceptance_to_call_s": {
            "n": len(run.waits),
            "p50": _r(pct(run.waits, 50)),
            "p90": _r(pct(run.waits, 90)),
            "max": _r(max(run.waits) if run.waits else None),
        },
        "wall_ms_per_exchange": {
            "p50": round(pct(run.wall_ms, 50) or 0, 3),
            "p99": round(pct(run.wall_ms, 99) or 0, 3),
            "words_per_exchange": round(n_words / len(exchanges), 1),
        },
    }


def print_mode(mode: str, figures: dict) -> None:
    for p in PARTS:
        f = figures[p]
        print(
            f"[{mode:20}] {p:9}: tool P {f['tool_precision']} R {f['tool_recall']} "
            f"F1 {f['tool_f1']}  args {f['argument_accuracy']}  strict "
            f"{f['strict_pass_rate']}  ({f['exchanges']} exchanges, "
            f"{f['calls_expected']} calls)"
        )
    a = figures["acceptance_to_call_s"]
    w = figures["wall_ms_per_exchange"]
    print(
        f"[{mode:20}] acceptance -> call: p50 {a['p50']} s, p90 {a['p90']} s, max "
        f"{a['max']} s (simulated: the wait for the user's words); dialogue wall time per "
        f"exchange p50 {w['p50']} ms, p99 {w['p99']} ms"
    )


def print_errors(which: str, all_errors: dict[tuple[str, str], list[str]]) -> None:
    if which == "none":
        return
    for (mode, p), errs in all_errors.items():
        if which in (p, "all") and mode == "on_time":
            print(f"-- errors, {p} ({mode}) --")
            for e in errs:
                print("  " + e)


def main() -> int:
    args = parse_args()
    rules = load_rules()
    drules = load_dialogue_rules(rules)
    exchanges = load(CORPUS)
    report: dict = {
        "corpus": dict(Counter(e.part for e in exchanges)),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
        "modes": {},
    }
    print(f"dialogue corpus: {report['corpus']} exchanges; load {report['machine']['loadavg']}")
    all_errors: dict[tuple[str, str], list[str]] = {}
    for mode, timing in MODES.items():
        run = play_mode(exchanges, timing, rules, drules)
        report["modes"][mode] = mode_figures(timing, run, exchanges)
        print_mode(mode, report["modes"][mode])
        all_errors.update({(mode, p): run.tallies[p].errors for p in PARTS})
    report["user_word_cost"] = wc = word_cost(exchanges, drules)
    print(f"dialogue per user word: p50 {wc['p50_ms']} ms, p99 {wc['p99_ms']} ms, max "
          f"{wc['max_ms']} ms over {wc['words']} words")  # fmt: skip
    if args.stop_trials > 0:
        report["user_stop_to_robot_cancel"] = st = stop_latency(args.stop_trials)
        print(
            f"user's stop -> robot cancel (2 open calls, loopback): p50 {st['p50_ms']} ms, "
            f"p99 {st['p99_ms']} ms, max {st['max_ms']} ms over {st['trials']} trials"
        )
        report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print_errors(args.errors, all_errors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
