"""``creature replay`` without a face: a fresh brain decides again from a record's voice
events, the recorded robot answers in place of a real one, nothing is left in the outbox the
config names, and bad flags are one clear line."""

from __future__ import annotations

import json

import pytest

from tests.conftest import creature

T0 = 1000.0
WORDS = ["Sure,", "I'll", "pick", "up", "the", "red", "cup."]


def frame(i: int, text: str | None = None) -> dict:
    return {"kind": "frame", "index": i, "t": round(T0 + 0.08 * i, 6), "mouth": 0.5 if text else 0.0,
            "rms_db": -25.0 if text else -120.0, "model_ms": 1.0, "overhead_ms": 0.1,
            "missed": False, "user_speaking": False, **({"text": " " + text} if text else {})}  # fmt: skip


@pytest.fixture
def record(tmp_path):
    """A record as the demo writes it: a robot connects, the creature agrees to a task, the
    robot reports accepted, running and succeeded."""
    lines = [
        {"kind": "robot_connected", "index": -1, "t": T0, "robot": "arm", "robots": 1},
        {"kind": "loop_started", "index": 0, "t": T0, "backend": "replay"},
    ]
    for i in range(40):
        word = WORDS[i - 5] if 5 <= i < 5 + len(WORDS) else None
        lines.append(frame(i, word))
        if i == 11:
            sent = T0 + 0.08 * i + 0.005
            lines.append({"kind": "tool_call", "index": 11, "t": sent, "id": "call_old",
                          "name": "do_physical_task", "arguments": {"action": "pick_up"},
                          "intent": "int_old", "robot": "arm"})  # fmt: skip
            for dt, status in ((0.1, "accepted"), (0.2, "running"), (1.5, "succeeded")):
                lines.append({"kind": "tool_status", "index": 11, "t": sent + dt, "id": "call_old",
                              "status": status, "reason": None, "action": "pick_up",
                              "source": "arm"})  # fmt: skip
    lines.append({"kind": "loop_stopped", "index": 40, "t": T0 + 3.3, "frames": 40, "dropped": {}})
    p = tmp_path / "rec.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return p


def replay(record, tmp_path, *args: str):
    return creature(
        "replay", str(record), "--no-face", "--speed", "8", "--record-to",
        str(tmp_path / "replayed.jsonl"), "--set", f"slow_loop.outbox.path={tmp_path / 'real.db'}",
        "--set", f"state_dir={tmp_path / 'state'}",
        *args, timeout=60,
    )  # fmt: skip


def test_a_fresh_brain_hears_the_intent_and_the_recorded_robot_answers(record, tmp_path) -> None:
    r = replay(record, tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["frames"] == 40
    assert out["replay"]["intents"] == ["pick_up"] and out["replay"]["tool_calls"] == 1
    assert out["replay"]["statuses"] == ["accepted", "running", "succeeded"]
    assert out["same"]["statuses"] and out["same"]["tool_calls"]
    assert not (tmp_path / "real.db").exists()  # the configured outbox was never touched
    replayed = [json.loads(x) for x in (tmp_path / "replayed.jsonl").read_text().splitlines()]
    call = next(x for x in replayed if x["kind"] == "tool_call")
    assert call["robot"] == "arm" and call["id"] != "call_old"  # a new call, to the stand-in
    done = [x for x in replayed if x["kind"] == "tool_status" and x["status"] == "succeeded"]
    # the recorded delay (1.5 s) on the record's clock, at 8x speed
    assert done and done[0]["t"] - call["t"] == pytest.approx(1.5, abs=0.3)


def test_an_interpreters_record_replays_as_an_interpreter(record, tmp_path) -> None:
    """Translation lines mark the record as an interpreter's: the translated commitment fires
    no intent again (and the passage is followed again)."""
    lines = record.read_text().splitlines()
    lines.insert(2, json.dumps({"kind": "translation_started", "index": 5, "t": T0 + 0.4,
                                "passage": 1, "source_t": T0, "lag_ms": 400.0}))  # fmt: skip
    record.write_text("\n".join(lines) + "\n")
    r = replay(record, tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["replay"]["intents"] == [] and out["replay"]["tool_calls"] == 0
    replayed = [json.loads(x) for x in (tmp_path / "replayed.jsonl").read_text().splitlines()]
    assert [x["text"] for x in replayed if x["kind"] == "translation"] == [
        "Sure, I'll pick up the red cup."
    ]


def test_from_to_replays_a_slice(record, tmp_path) -> None:
    r = replay(record, tmp_path, "--from", "1.0", "--to", "2.0")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    expected = sum(1.0 <= 0.08 * i <= 2.0 for i in range(40))
    assert out["frames"] == expected and out["replay"]["intents"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--speed", "0"], "--speed: expected a number above 0"),
        (["--from", "-1"], "--from: expected seconds >= 0"),
        (["--from", "2", "--to", "1"], "--to: expected a second after --from 2"),
        (["--from", "100"], "no voice events between 100 s and the end"),
    ],
)
def test_bad_flags_are_one_clear_line(record, tmp_path, args, message, capsys) -> None:
    from orchestrator.cli.main import main

    code = main(["replay", str(record), "--no-face", *args,
                 "--set", f"slow_loop.outbox.path={tmp_path / 'real.db'}",
                 "--set", f"state_dir={tmp_path / 'state'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
