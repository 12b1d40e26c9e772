"""A record written before a change reads and replays the same after it.

``tests/data/demo_record.jsonl`` was written by ``creature demo --once --no-face --robot`` at an
earlier commit, and ``tests/data/demo_record.replay.json`` holds what ``creature replay`` decided
from it there (its summary, the call it sent, the intent it heard, how many lines of each kind
it recorded). The record format and the brain's decisions are a contract: every line must read
back as the typed event that wrote it, and a replay with this checkout must decide the same."""

from __future__ import annotations

import json
from collections import Counter

from orchestrator.analysis.record_file import read_record
from tests.conftest import ROOT, creature

RECORD = ROOT / "tests" / "data" / "demo_record.jsonl"
EXPECTED = ROOT / "tests" / "data" / "demo_record.replay.json"


def test_every_line_of_an_old_record_reads_back_as_the_event_that_wrote_it() -> None:
    lines = [json.loads(x) for x in RECORD.read_text().splitlines()]
    rec = read_record(RECORD)
    assert rec.unknown == {} and rec.record_dropped == 0
    assert [e.to_dict() for e in rec.events] == lines


def test_an_old_record_replays_to_the_same_decisions(tmp_path) -> None:
    expected = json.loads(EXPECTED.read_text())
    replayed = tmp_path / "replayed.jsonl"
    r = creature(
        "replay", str(RECORD), "--no-face", "--speed", "8", "--record-to", str(replayed),
        "--set", f"slow_loop.outbox.path={tmp_path / 'real.db'}",
        "--set", f"state_dir={tmp_path / 'state'}", timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == expected["summary"]
    lines = [json.loads(x) for x in replayed.read_text().splitlines()]
    calls = [
        {k: v for k, v in x["arguments"].items() if k not in ("id", "created")}
        | {"robot": x["robot"], "index": x["index"]}
        for x in lines
        if x["kind"] == "tool_call"
    ]
    assert calls == expected["tool_calls"]
    intents = [
        {k: v for k, v in x.items() if k not in ("id", "lag_ms")}
        for x in lines
        if x["kind"] == "intent"
    ]
    assert intents == expected["intents"]
    assert dict(Counter(x["kind"] for x in lines)) == expected["kinds"]
