"""The intent watcher: commitments fire, every kind of near-miss does not, once per utterance."""

from __future__ import annotations

import json

import pytest

from orchestrator.brain.intent_rules import IntentRulesError, load_rules
from orchestrator.brain.intents import IntentConfig, IntentWatcher, intents_in_text
from tests.conftest import creature

COMMITMENTS = [
    ("Sure, I'll pick up the red cup.", "pick_up", {"object": "red cup"}),
    ("Sure, I'll bring you the keys.", "bring", {"object": "keys", "recipient": "user"}),
    ("Okay, I'll open the door now.", "open", {"object": "door"}),
    ("Let me grab that for you.", "pick_up", {"object": "it"}),
    (
        "I'm going to put the cup on the table.",
        "put_down",
        {"object": "cup", "destination": "table"},
    ),
    ("Picking up the pen now.", "pick_up", {"object": "pen"}),
    ("I'll go to the kitchen.", "go_to", {"destination": "kitchen"}),
    ("I'll give the book to Anna.", "give", {"object": "book", "recipient": "anna"}),
    ("I'll hand you the remote.", "give", {"object": "remote", "recipient": "user"}),
    ("Okay, I'll stop.", "stop", {}),
    ("Stopping now.", "stop", {}),
    ("Let me take a look at the plant.", "look_at", {"object": "plant"}),
    ("I'll close the window.", "close", {"object": "window"}),
    ("I'll just quickly go and pick up the pen.", "pick_up", {"object": "pen"}),
    ("I'll pick the blue box up.", "pick_up", {"object": "blue box"}),
    ("Sure thing, grabbing the keys now.", "pick_up", {"object": "keys"}),
    ("I will fetch the ball.", "bring", {"object": "ball"}),
    ("I\u2019ll shut the fridge.", "close", {"object": "fridge"}),
    ("No problem, I'm heading to the door.", "go_to", {"destination": "door"}),
    ("Alright, I'm bringing the towel to you.", "bring", {"object": "towel", "recipient": "user"}),
    (
        "I'll set the glass down on the shelf.",
        "put_down",
        {"object": "glass", "destination": "shelf"},
    ),
]

NEAR_MISSES = {
    "question": [
        "Do you want me to open it?",
        "Should I pick up the cup?",
        "Want me to bring you the keys",
        "Shall I close the window?",
        "I'll pick up the cup, okay?",
        "Would you like me to go to the kitchen?",
    ],
    "refusal": [
        "I can't pick that up.",
        "I won't open the door.",
        "I'm not going to pick it up.",
        "I don't think I'll pick it up.",
        "Sorry, I cannot bring you the keys.",
        "I'm unable to open the window.",
    ],
    "past": [
        "I picked it up yesterday.",
        "I brought you the keys earlier.",
        "I put it down already.",
        "I opened the door an hour ago.",
        "I was going to pick it up.",
    ],
    "user_acts": [
        "You should pick it up.",
        "Pick up the cup.",
        "You can open the door yourself.",
        "Why don't you bring the keys?",
        "You'll have to close the window.",
    ],
    "idiom": [
        "Let's pick up the pace.",
        "I'll look into it.",
        "Bring it on!",
        "Give me a moment.",
        "I'll pick up where we left off.",
        "I'll give it a try.",
        "I'll bring that up with them.",
        "I'm going to tell you a story.",
        "I'll stop by tomorrow.",
        "I'm looking forward to it.",
        "I'll put up with it.",
        "I'll give you a hand.",
        "I'll open up to you.",
        "I'll look at the bright side.",
        "I'll close the deal.",
        "I'll give you an example.",
    ],
    "hedge": [
        "I'll pick it up later.",
        "If you want, I'll open the door.",
        "Maybe I'll grab the keys.",
        "I could pick it up for you.",
        "I'd pick it up if I could.",
    ],
    "chatter": [
        "Hello there! I'm awake. What can I do for you?",
        "There you go. Anything else?",
        "Stop!",
        "I'm going to be honest.",
    ],
}


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def fire(text: str, rules) -> list:
    return intents_in_text(text, IntentWatcher(IntentConfig(), rules))


@pytest.mark.parametrize("text,action,slots", COMMITMENTS)
def test_a_commitment_fires_with_its_slots(text, action, slots, rules):
    got = fire(text, rules)
    assert len(got) == 1, text
    intent = got[0]
    assert intent.action == action
    for k, v in slots.items():
        assert intent.slots[k] == v, (text, intent.slots)
    assert 0.6 <= intent.confidence <= 1.0
    assert intent.boundary == "sentence_end"


@pytest.mark.parametrize("kind,text", [(k, t) for k, texts in NEAR_MISSES.items() for t in texts])
def test_a_near_miss_does_not_fire(kind, text, rules):
    assert fire(text, rules) == [], f"{kind}: {text}"


def test_fires_on_the_piece_with_the_full_stop_once_per_utterance(rules):
    w = IntentWatcher(IntentConfig(), rules)
    pieces = [" Sure,", " I'll", " pick", " up", " the", " red", " cup.", None, None, None]
    fired = []
    for i, p in enumerate(pieces):
        for intent in w.feed(i, 10.0 + i * 0.08, p, mouth=0.5):
            fired.append((i, intent))
    assert [i for i, _ in fired] == [6]  # the very piece that completed the phrase
    assert fired[0][1].index == 6 and fired[0][1].t == pytest.approx(10.48)
    assert fired[0][1].phrase == "Sure, I'll pick up the red cup."


def test_no_piece_before_the_end_fires_even_if_it_already_matches(rules):
    w = IntentWatcher(IntentConfig(), rules)
    for i, p in enumerate([" I'll", " open", " the", " door"]):
        assert w.feed(i, float(i), p, mouth=0.5) == []
    # "... door, shall I?" turns it into a question: nothing fired early, nothing fires now
    assert w.feed(4, 4.0, ", shall", 0.5) == [] and w.feed(5, 5.0, " I?", 0.5) == []


def test_a_pause_without_text_ends_the_utterance(rules):
    cfg = IntentConfig(pause_frames=3, mouth_quiet_frames=100)
    w = IntentWatcher(cfg, rules)
    for i, p in enumerate([" I'll", " close", " the", " window"]):
        assert w.feed(i, float(i), p, mouth=0.5) == []
    assert w.feed(4, 4.0, None, 0.5) == [] and w.feed(5, 5.0, None, 0.5) == []
    got = w.feed(6, 6.0, None, 0.5)
    assert [g.action for g in got] == ["close"] and got[0].boundary == "pause"
    assert got[0].index == 3  # stamped with the last piece, not the frame that noticed
    assert all(w.feed(7 + k, 7.0 + k, None, 0.5) == [] for k in range(10))


def test_a_quiet_mouth_ends_the_utterance(rules):
    w = IntentWatcher(IntentConfig(pause_frames=100, mouth_quiet_frames=2), rules)
    for i, p in enumerate([" I'll", " open", " the", " box"]):
        w.feed(i, float(i), p, mouth=0.6)
    assert w.feed(4, 4.0, None, 0.0) == []
    assert [g.boundary for g in w.feed(5, 5.0, None, 0.0)] == ["mouth_quiet"]


def test_repeating_the_same_commitment_fires_once_in_the_window(rules):
    text = "I'll pick up the cup. I'll pick up the cup. Then I'll open the door."
    got = fire(text, rules)
    assert [g.action for g in got] == ["pick_up", "open"]


def test_two_sentences_in_one_piece_are_both_judged(rules):
    w = IntentWatcher(IntentConfig(), rules)
    got = w.feed(0, 0.0, " I'll pick up the cup. Then I'll open the door.", 0.5)
    assert [g.action for g in got] == ["pick_up", "open"]


def test_a_bad_rules_file_names_file_and_key(tmp_path):
    p = tmp_path / "intents.yaml"
    p.write_text(
        (load_rules().source and open(load_rules().source).read()).replace(
            'hedges: "', 'hedges: "(unclosed'
        )
    )
    with pytest.raises(IntentRulesError, match=r"intents.yaml: hedges: bad regex"):
        load_rules(p)
    with pytest.raises(IntentRulesError, match="not found"):
        load_rules(tmp_path / "nope.yaml")


def test_the_cli_prints_the_intent_and_tool_call_as_json():
    r = creature("intent", "Sure, I'll bring you the keys.")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[0])
    assert out["intent"]["action"] == "bring" and out["intent"]["object"] == "keys"
    args = out["tool_call"]["arguments"]
    assert args["action"] == "bring" and args["recipient"] == "user"
    assert args["id"].startswith("call_") and "refused" not in out
    r = creature("intent", "Do you want me to open it?")
    assert r.returncode == 0 and r.stdout.strip() == ""
