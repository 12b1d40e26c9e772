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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", type=Path, help="score the watcher of this checkout instead")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--errors", choices=["none", *PARTS, "all"], default="none")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = short_mode.parse(ap, out="out")
    code = (args.code or ROOT).resolve()
    out_path, corpus = args.out.resolve(), args.corpus.resolve()  # before changing directory
    sys.path.insert(0, str(code))
    os.chdir(code)  # an older checkout finds its own configs/
    from orchestrator.brain.intents import IntentWatcher
    from orchestrator.slow_config import IntentConfig

    phrases = load_corpus(corpus)
    cfg = IntentConfig()
    rules = IntentWatcher(cfg).rules
    sp = train_pieces([p.text for p in phrases])

    def feeds(text: str) -> dict[str, list[str]]:
        return {
            "words": [" " + w for w in text.split()],
            "pieces": [s.replace("\u2581", " ") for s in sp.encode(text, out_type=str)],
        }

    piece_ms: list[float] = []
    judge_ms: list[float] = []
    tallies: dict[tuple[str, str, str], Tally] = defaultdict(Tally)  # (mode, part, category)
    disagree: list[str] = []
    for p in phrases:
        results = {}
        for mode, pieces in feeds(p.text).items():
            w = IntentWatcher(cfg, rules)
            frames = pieces + [None] * (cfg.pause_frames + PAUSE_EXTRA)
            fired = []
            for i, piece in enumerate(frames):
                before = w.sentences
                t0 = time.perf_counter()
                out = w.feed(i, i * 0.08, piece, 0.5)
                dt = (time.perf_counter() - t0) * 1000.0
                if mode == "pieces":
                    piece_ms.append(dt)
                    if w.sentences != before:
                        judge_ms.append(dt)
                fired.extend(out)
            fired.extend(w.flush())
            got = (fired[0].action, dict(fired[0].slots)) if fired else None
            results[mode] = got
            keys = [(mode, p.part, p.category), (mode, p.part, "all")]
            if p.action is None or p.action in FIRST_NINE:
                keys.append((mode, p.part, "first_nine"))
            for key in keys:
                tallies[key].add(p, got)
        if results["words"] != results["pieces"]:
            disagree.append(f"{p.text!r}: words {results['words']} vs pieces {results['pieces']}")

    categories = sorted({p.category for p in phrases})
    report: dict = {
        "code": str(code),
        "corpus": {part: sum(p.part == part for p in phrases) for part in PARTS},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
        "modes": {},
        "latency_ms": {
            "per_piece": {
                "n": len(piece_ms),
                "p50": round(pct(piece_ms, 50), 4),
                "p99": round(pct(piece_ms, 99), 4),
                "max": round(max(piece_ms), 4),
            },
            "judging_piece": {
                "n": len(judge_ms),
                "p50": round(pct(judge_ms, 50), 4),
                "p99": round(pct(judge_ms, 99), 4),
                "max": round(max(judge_ms), 4),
            },
        },
        "words_vs_pieces_disagreements": disagree,
    }
    print(f"intent corpus: {report['corpus']} phrases; code {code}")
    print(f"load average {report['machine']['loadavg']} on {report['machine']['cpus']} CPUs")
    for mode in ("pieces", "words"):
        report["modes"][mode] = {}
        for part in PARTS:
            rows = ["all", "first_nine", *categories]
            per = {c: tallies[(mode, part, c)].figures() for c in rows}
            report["modes"][mode][part] = per
            for row in ("all", "first_nine"):
                a = per[row]
                print(
                    f"[{mode:6}] {part:7} {row:10}: precision {a['precision']}  "
                    f"recall {a['recall']}  slot accuracy {a['slot_accuracy']}  "
                    f"({a['hits']} hits, {a['fired']} fired, {a['phrases_with_action']} actions)"
                )
    print(
        "per category (pieces feed): precision recall slot-accuracy (n with action), or for "
        "near-miss categories the phrases that fired; " + " | ".join(PARTS)
    )
    for c in categories:
        cells = []
        for part in PARTS:
            f = report["modes"]["pieces"][part][c]

            def fmt(x):
                return "  -  " if x is None else f"{x:.2f}"

            if f["phrases_with_action"]:
                cells.append(
                    f"{fmt(f['precision'])} {fmt(f['recall'])} {fmt(f['slot_accuracy'])}"
                    f" (n={f['phrases_with_action']})"
                )
            else:  # a near-miss category: how many of its phrases fired (all wrongly)
                cells.append(f"false fires {f['fired']}/{f['phrases']}")
        print(f"  {c:10} " + " | ".join(f"{cell:26}" for cell in cells))
    lat = report["latency_ms"]
    print(
        f"latency per piece: p50 {lat['per_piece']['p50']} ms, p99 {lat['per_piece']['p99']} ms, "
        f"max {lat['per_piece']['max']} ms over {lat['per_piece']['n']} pieces; "
        f"judging pieces p99 {lat['judging_piece']['p99']} ms, "
        f"max {lat['judging_piece']['max']} ms over {lat['judging_piece']['n']}"
    )
    print(f"words vs pieces: {len(disagree)} phrases judged differently")
    for d in disagree[:20]:
        print("  " + d)
    if args.errors != "none":
        for part in PARTS:
            if args.errors in (part, "all"):
                print(f"-- errors, {part} (pieces feed) --")
                for e in tallies[("pieces", part, "all")].errors:
                    print("  " + e)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
