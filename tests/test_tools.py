"""The do_physical_task schema and the safety gate."""

from __future__ import annotations

import json

import jsonschema
import pytest

from orchestrator.brain.intent_rules import load_rules
from orchestrator.brain.intents import intents_in_text
from orchestrator.brain.tool_schema import TOOL_FILE, parameters_schema
from orchestrator.brain.tools import SafetyGate, ToolCallError, call_from_intent, validate_call
from orchestrator.slow_config import ALL_ACTIONS, SafetyConfig


def test_the_schema_file_is_an_openai_function_tool_and_lists_every_action():
    tool = json.loads(TOOL_FILE.read_text())
    assert tool["type"] == "function" and tool["function"]["name"] == "do_physical_task"
    schema = parameters_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["action"]["enum"] == ALL_ACTIONS
    assert schema["additionalProperties"] is False


def test_the_action_list_has_one_home_the_schema():
    enum = parameters_schema()["properties"]["action"]["enum"]
    assert SafetyConfig().allowed_actions == enum  # the allowlist's default is the enum
    assert set(load_rules().actions) <= set(enum)  # every phrased action is a tool action


def test_an_intent_rule_for_an_action_the_schema_lacks_is_a_clear_error(tmp_path):
    from orchestrator.brain.intent_rules import DEFAULT_INTENTS_FILE, IntentRulesError

    text = DEFAULT_INTENTS_FILE.read_text().replace(
        "\nactions:\n", "\nactions:\n  juggle:\n    patterns: ['juggle']\n", 1
    )
    bad = tmp_path / "intents.yaml"
    bad.write_text(text)
    with pytest.raises(
        IntentRulesError, match=r"actions.juggle: not an action of the do_physical_task schema"
    ):
        load_rules(bad)


def test_a_call_from_an_intent_validates_and_bad_calls_name_the_field():
    intent = intents_in_text("Sure, I'll pick up the red cup.")[0]
    call = call_from_intent(intent)
    assert call["object"] == "red cup" and call["utterance"] == "Sure, I'll pick up the red cup."
    assert call["id"] != call_from_intent(intent)["id"]  # unique per call
    with pytest.raises(ToolCallError, match="action"):
        validate_call({**call, "action": "launch_rocket"})
    with pytest.raises(ToolCallError, match="confidence"):
        validate_call({**call, "confidence": 1.5})
    with pytest.raises(ToolCallError, match="extra"):
        validate_call({**call, "extra": 1})


def test_safety_gate_allowlist_threshold_and_rate_window():
    now = [0.0]
    gate = SafetyGate(
        SafetyConfig(
            allowed_actions=["pick_up", "stop"],
            min_confidence=0.7,
            rate_limit_calls=2,
            rate_limit_window_s=10.0,
        ),
        clock=lambda: now[0],
    )
    ok = {"action": "pick_up", "confidence": 0.9}
    assert "allowed_actions" in gate.check({"action": "open", "confidence": 0.9})
    assert "min_confidence" in gate.check({"action": "pick_up", "confidence": 0.5})
    assert gate.check(ok) is None and gate.check(ok) is None
    assert "rate limit" in gate.check(ok)
    assert gate.check({"action": "stop", "confidence": 0.9}) is None  # never limited
    now[0] = 10.5
    assert gate.check(ok) is None  # the window moved on


def test_an_unknown_action_in_the_allowlist_is_a_config_error(tmp_path):
    from orchestrator.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="slow_loop.safety.allowed_actions.*unknown action"):
        load_config(overrides={"slow_loop.safety.allowed_actions": ["fly"]})
