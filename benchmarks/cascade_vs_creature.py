"""The cascade baseline against the creature, on one harness and one clock.

    python benchmarks/cascade_vs_creature.py [--short] [creature cascade options]

Runs ``creature cascade --against creature`` over every shipped utterance
(``benchmarks/utterances``) and writes ``benchmarks/results/cascade.json``: per-stage p50/p90 of
the local Pipecat cascade (Silero VAD + smart-turn v3, pocketsphinx, a SmolLM2-135M-shaped
LLM with random weights, espeak-ng) beside the creature's time to first audio, with the
machine's load before, between and after. The first run builds the cascade's environment.
``--short``: the first two utterances and short replies, written to a temporary file
(``benchmarks/short_mode.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from orchestrator.cli import main  # noqa: E402

UTTERANCES = ROOT / "benchmarks" / "utterances"
SHORT_UTTERANCES = 2


def command(argv: list[str]) -> list[str]:
    out = ROOT / "benchmarks" / "results" / "cascade.json"
    if "--short" not in argv:
        return ["cascade", "--against", "creature", "--json", str(out), *argv]
    argv = [a for a in argv if a != "--short"]
    wavs = sorted(UTTERANCES.glob("*.wav"))[:SHORT_UTTERANCES]
    short = ["--input", *map(str, wavs), "--max-tokens", "4"]
    short += ["--json", str(short_mode.short_dir() / out.name)]
    return ["cascade", "--against", "creature", *short, *argv]


if __name__ == "__main__":
    sys.exit(main(command(sys.argv[1:])))
