"""The cascade baseline against the creature, on one harness and one clock.

    python benchmarks/cascade_vs_creature.py [creature cascade options]

Runs ``creature cascade --against creature`` over every shipped utterance
(``benchmarks/utterances``) and writes ``benchmarks/results/cascade.json``: per-stage p50/p90 of
the local Pipecat cascade (Silero VAD + smart-turn v3, pocketsphinx, a SmolLM2-135M-shaped
LLM with random weights, espeak-ng) beside the creature's time to first audio, with the
machine's load before, between and after. The first run builds the cascade's environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.cli import main  # noqa: E402

if __name__ == "__main__":
    out = ROOT / "benchmarks" / "results" / "cascade.json"
    sys.exit(main(["cascade", "--against", "creature", "--json", str(out), *sys.argv[1:]]))
