"""Why a sentence did or did not fire: the rule, the verb, the commitment, the slots."""

from __future__ import annotations

import json

import pytest

from orchestrator.brain.intent_rules import Rule, judge, load_rules
from tests.conftest import creature


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.mark.parametrize(
    "text,rule",
    [
        ("Shall I carry the crate?", Rule.QUESTION),
        ("want me to grab the lantern", Rule.QUESTION),
        ("If you like, I'll open the shutters.", Rule.HEDGE),
        ("I'll dust the piano later.", Rule.HEDGE),
        ("I won't open the shutters.", Rule.NEGATION),
        ("I'll pick up the pace.", Rule.IDIOM),
        ("I lifted the crate this morning.", Rule.TENSE),
        ("I was about to lift the crate.", Rule.TENSE),
        ("You could lift the crate.", Rule.TO_USER),
        ("Lift the crate.", Rule.TO_USER),
        ("Lifting crates is hard work.", Rule.GERUND),
        ("I love lifting crates.", Rule.NO_COMMITMENT),
        ("The crate is heavy.", Rule.NO_ACTION_VERB),
        ("   ", Rule.EMPTY),
    ],
)
def test_each_rule_names_itself(text, rule, rules):
    j = judge(text, rules)
    assert j.match is None and j.rule is rule, (text, j.to_dict())
    assert j.detail  # a reason a person can read


def test_a_fired_sentence_explains_its_verb_commitment_and_slots(rules):
    j = judge("Okay, I'm just gonna carry the crate over to the shed.", rules)
    d = j.to_dict()
    assert d["fired"] is True and d["action"] == "bring"
    assert d["verb"] == "carry" and d["commitment"] == "i'm just going to"
    assert d["slots"] == {"object": "crate", "destination": "shed", "recipient": None}
    assert d["normalized"] == "okay, i'm just going to carry the crate over to the shed."
    assert d["candidates"][0]["form"] == "base" and "blocked" not in d["candidates"][0]


def test_every_candidate_is_listed_with_its_own_reason(rules):
    d = judge("I can't lift the crate, but I'll open the shed.", rules).to_dict()
    assert d["fired"] is True and d["action"] == "open"
    first = d["candidates"][0]
    assert first["action"] == "pick_up" and first["blocked"] == "negation"
    assert "can't" in first["why"]


def test_a_verb_word_without_a_fitting_frame_says_so(rules):
    d = judge("I'll pick.", rules).to_dict()
    assert d["rule"] == "no_action_verb" and "'pick'" in d["why"] and "frames" in d["why"]


def test_the_cli_explains_each_sentence_as_json():
    r = creature(
        "intent",
        "--explain",
        "Do you want me to lift it? Okay, I'll lift the crate. I'll lift the crate.",
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["fired"] for x in lines] == [False, True, True]
    assert lines[0]["rule"] == "question" and "why" in lines[0]
    assert lines[1]["tool_call"]["arguments"]["action"] == "pick_up"
    assert lines[1]["tool_call"]["arguments"]["object"] == "crate"
    assert "repeat_window_s" in lines[2]["repeated"] and "tool_call" not in lines[2]
