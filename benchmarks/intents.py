"""Intent-watcher benchmark: precision, recall and slot accuracy on a labelled corpus, and the
time the watcher takes per text piece.

The corpus (benchmarks/intent_corpus/*.tsv) has three parts: ``dev.tsv``, the phrasings the
rules were tuned against; ``heldout.tsv``, written before the rules; ``challenge.tsv``, written
after them to be hard. See each file's header for how it was used.
Each phrase is fed to a fresh watcher the way the creature's text arrives, then a pause (the
frames without text that end an utterance when there is no punctuation):

* ``words``: one word a frame (as ``creature intent`` feeds it);
* ``pieces``: SentencePiece pieces, one a frame, from a unigram model trained on the corpus
  with a small vocabulary, so many words arrive split ("gra" "bbing") as Moshi's tokenizer
  splits words it has no single piece for.

A phrase counts as a hit when the watcher fires the labelled action (precision: hits / all
firings; recall: hits / labelled actions); its slots are right when every slot the label or
the intent sets is equal. Latency: wall time of each ``feed`` call (per piece), and of the
calls that judged an utterance.

    python benchmarks/intents.py [--code DIR] [--errors dev|heldout|challenge|all] [--out FILE]

``--code DIR`` scores the watcher of another checkout (e.g. the commit before this work:
``git worktree add /tmp/before b84072f``; then ``--code /tmp/before``). Prints the figures
and writes benchmarks/results/intents.json (or --out).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after any --code checkout, which goes first

from benchmarks import corpus_tsv, short_mode  # noqa: E402

CORPUS = ROOT / "benchmarks" / "intent_corpus"
RESULTS = ROOT / "benchmarks" / "results" / "intents.json"
# dev: tuned against; heldout: written before the rules, never tuned against; challenge:
# written after the rules to be hard, scored as it stands
PARTS = ("dev", "heldout", "challenge")
SPM_VOCAB = 300  # small on purpose: most words longer than a few letters arrive in pieces
PAUSE_EXTRA = 2  # frames past pause_frames, so a phrase without punctuation surely ends
# the actions of the watcher before the home-robot vocabulary, so an older checkout can be
# compared on the phrases it could have got right ("first_nine" rows)
FIRST_NINE = {"pick_up", "bring", "put_down", "go_to", "look_at", "give", "open", "close", "stop"}


@dataclass(frozen=True)
class Phrase:
    part: str
    category: str
    text: str
    action: str | None
    slots: dict[str, str]
    line: int


def parse_expected(cell: str, where: str) -> tuple[str | None, dict[str, str]]:
    items = [c.strip() for c in cell.split(";") if c.strip()]
    if not items or items[0] == "-":
        return None, {}
    slots = dict(corpus_tsv.slots(items[1:], where))
    return items[0], slots


def load_corpus(directory: Path) -> list[Phrase]:
    out = []
    for part, where, n, (category, expected, text) in corpus_tsv.rows(directory, PARTS, 3):
        action, slots = parse_expected(expected, where)
        out.append(Phrase(part, category, text, action, slots, n))
    return out


def train_pieces(texts: list[str]):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=SPM_VOCAB,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


@dataclass
class Tally:
    phrases: int = 0
    positives: int = 0  # phrases labelled with an action
    fired: int = 0  # phrases on which the watcher fired (any action)
    hits: int = 0  # fired the labelled action
    slots_right: int = 0  # ... with every slot right
    errors: list[str] = field(default_factory=list)

    def add(self, p: Phrase, got) -> None:
        self.phrases += 1
        self.positives += p.action is not None
        if got is None:
            if p.action is not None:
                self.errors.append(f"MISS  [{p.category}] {p.text!r} -> nothing (want {p.action})")
            return
        self.fired += 1
        action, slots = got
        if action != p.action:
            want = p.action or "nothing"
            self.errors.append(f"FALSE [{p.category}] {p.text!r} -> {action} (want {want})")
            return
        self.hits += 1
        keys = set(p.slots) | {k for k, v in slots.items() if v is not None}
        if all(slots.get(k) == p.slots.get(k) for k in keys):
            self.slots_right += 1
        else:
            shown = {k: v for k, v in slots.items() if v is not None}
            self.errors.append(f"SLOTS [{p.category}] {p.text!r} -> {shown} (want {p.slots})")

    def figures(self) -> dict:
        return {
            "phrases": self.phrases,
            "phrases_with_action": self.positives,
            "fired": self.fired,
            "hits": self.hits,
            "precision": round(self.hits / self.fired, 3) if self.fired else None,
            "recall": round(self.hits / self.positives, 3) if self.positives else None,
            "slot_accuracy": round(self.slots_right / self.hits, 3) if self.hits else None,
        }


@dataclass
class Run:
    """What scoring the corpus gathers: the watcher's time per piece and per judging piece
    (pieces feed), the tallies per (mode, part, category), and the phrases the two feeds
    judged differently."""

    piece_ms: list[float] = field(default_factory=list)
    judge_ms: list[float] = field(default_factory=list)
    tallies: dict[tuple[str, str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    disagree: list[str] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", type=Path, help="score the watcher of this checkout instead")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--errors", choices=["none", *PARTS, "all"], default="none")
    ap.add_argument("--out", type=Path, default=RESULTS)
    return short_mode.parse(ap, out="out")


def feeds(sp, text: str) -> dict[str, list[str]]:
    """The phrase as the watcher gets it: one word a frame, or SentencePiece pieces."""
    return {
        "words": [" " + w for w in text.split()],
        "pieces": [s.replace("\u2581", " ") for s in sp.encode(text, out_type=str)],
    }


def feed_phrase(watcher, cfg, pieces: list[str], run: Run | None):
    """A fresh watcher fed the pieces then a pause: the first action it fired and its slots,
    or None; with ``run``, each feed call's time goes into it."""
    frames = pieces + [None] * (cfg.pause_frames + PAUSE_EXTRA)
    fired = []
    for i, piece in enumerate(frames):
        before = watcher.sentences
        t0 = time.perf_counter()
        out = watcher.feed(i, i * 0.08, piece, 0.5)
        dt = (time.perf_counter() - t0) * 1000.0
        if run is not None:
            run.piece_ms.append(dt)
            if watcher.sentences != before:
                run.judge_ms.append(dt)
        fired.extend(out)
    fired.extend(watcher.flush())
    return (fired[0].action, dict(fired[0].slots)) if fired else None


def tally_keys(mode: str, p: Phrase) -> list[tuple[str, str, str]]:
    """The rows a phrase counts in: its category, all, and first_nine where it applies."""
    keys = [(mode, p.part, p.category), (mode, p.part, "all")]
    if p.action is None or p.action in FIRST_NINE:
        keys.append((mode, p.part, "first_nine"))
    return keys


def score_corpus(phrases: list[Phrase], watcher_cls, cfg, sp) -> Run:
    run = Run()
    rules = watcher_cls(cfg).rules
    for p in phrases:
        results = {}
        for mode, pieces in feeds(sp, p.text).items():
            timed = run if mode == "pieces" else None
            got = feed_phrase(watcher_cls(cfg, rules), cfg, pieces, timed)
            results[mode] = got
            for key in tally_keys(mode, p):
                run.tallies[key].add(p, got)
        if results["words"] != results["pieces"]:
            run.disagree.append(
                f"{p.text!r}: words {results['words']} vs pieces {results['pieces']}"
            )
    return run


def latency(xs: list[float]) -> dict:
    return {
        "n": len(xs),
        "p50": round(pct(xs, 50), 4),
        "p99": round(pct(xs, 99), 4),
        "max": round(max(xs), 4),
    }


def mode_figures(run: Run, categories: list[str]) -> dict:
    """Per feed, per part: the figures of all, first_nine and each category."""
    rows = ["all", "first_nine", *categories]
    return {
        mode: {part: {c: run.tallies[(mode, part, c)].figures() for c in rows} for part in PARTS}
        for mode in ("pieces", "words")
    }


def build_report(code: Path, phrases: list[Phrase], run: Run, categories: list[str]) -> dict:
    return {
        "code": str(code),
        "corpus": {part: sum(p.part == part for p in phrases) for part in PARTS},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
        "modes": mode_figures(run, categories),
        "latency_ms": {
            "per_piece": latency(run.piece_ms),
            "judging_piece": latency(run.judge_ms),
        },
        "words_vs_pieces_disagreements": run.disagree,
    }


def print_totals(report: dict) -> None:
    for mode, by_part in report["modes"].items():
        for part, per in by_part.items():
            for row in ("all", "first_nine"):
                a = per[row]
                print(
                    f"[{mode:6}] {part:7} {row:10}: precision {a['precision']}  "
                    f"recall {a['recall']}  slot accuracy {a['slot_accuracy']}  "
                    f"({a['hits']} hits, {a['fired']} fired, {a['phrases_with_action']} actions)"
                )


def two_places(x) -> str:
    return "  -  " if x is None else f"{x:.2f}"


def category_cell(f: dict) -> str:
    if f["phrases_with_action"]:
        return (
            f"{two_places(f['precision'])} {two_places(f['recall'])}"
            f" {two_places(f['slot_accuracy'])} (n={f['phrases_with_action']})"
        )
    # a near-miss category: how many of its phrases fired (all wrongly)
    return f"false fires {f['fired']}/{f['phrases']}"


def print_categories(report: dict, categories: list[str]) -> None:
    print(
        "per category (pieces feed): precision recall slot-accuracy (n with action), or for "
        "near-miss categories the phrases that fired; " + " | ".join(PARTS)
    )
    for c in categories:
        cells = [category_cell(report["modes"]["pieces"][part][c]) for part in PARTS]
        print(f"  {c:10} " + " | ".join(f"{cell:26}" for cell in cells))


def print_latency_and_disagreements(report: dict) -> None:
    lat = report["latency_ms"]
    print(
        f"latency per piece: p50 {lat['per_piece']['p50']} ms, p99 {lat['per_piece']['p99']} ms, "
        f"max {lat['per_piece']['max']} ms over {lat['per_piece']['n']} pieces; "
        f"judging pieces p99 {lat['judging_piece']['p99']} ms, "
        f"max {lat['judging_piece']['max']} ms over {lat['judging_piece']['n']}"
    )
    disagree = report["words_vs_pieces_disagreements"]
    print(f"words vs pieces: {len(disagree)} phrases judged differently")
    for d in disagree[:20]:
        print("  " + d)


def print_errors(which: str, run: Run) -> None:
    if which == "none":
        return
    for part in PARTS:
        if which in (part, "all"):
            print(f"-- errors, {part} (pieces feed) --")
            for e in run.tallies[("pieces", part, "all")].errors:
                print("  " + e)


def main() -> int:
    args = parse_args()
    code = (args.code or ROOT).resolve()
    out_path, corpus = args.out.resolve(), args.corpus.resolve()  # before changing directory
    sys.path.insert(0, str(code))
    os.chdir(code)  # an older checkout finds its own configs/
    from orchestrator.brain.intents import IntentWatcher
    from orchestrator.slow_config import IntentConfig

    phrases = load_corpus(corpus)
    sp = train_pieces([p.text for p in phrases])
    run = score_corpus(phrases, IntentWatcher, IntentConfig(), sp)
    categories = sorted({p.category for p in phrases})
    report = build_report(code, phrases, run, categories)
    print(f"intent corpus: {report['corpus']} phrases; code {code}")
    print(f"load average {report['machine']['loadavg']} on {report['machine']['cpus']} CPUs")
    print_totals(report)
    print_categories(report, categories)
    print_latency_and_disagreements(report)
    print_errors(args.errors, run)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
