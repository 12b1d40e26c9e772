"""The do_physical_task schema (generated from the action declarations) and the safety gate."""

from __future__ import annotations

import json

import jsonschema
import pytest

from orchestrator.brain.actions import load_actions
from orchestrator.brain.intent_rules import IntentRulesError, load_rules
from orchestrator.brain.intents import intents_in_text
from orchestrator.brain.tool_schema import parameters_schema, tool_definition
from orchestrator.brain.tools import SafetyGate, ToolCallError, call_from_intent, validate_call
from orchestrator.data_files import TOOL_ENVELOPE_FILE
from orchestrator.slow_config import SafetyConfig


def test_the_tool_is_an_openai_function_tool_generated_from_the_declarations():
    tool = tool_definition()
    assert tool["type"] == "function" and tool["function"]["name"] == "do_physical_task"
    schema = parameters_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    declared = load_actions()
    assert schema["properties"]["action"]["enum"] == list(declared.names)
    for slot in declared.slots:
        assert schema["properties"][slot]["type"] == ["string", "null"]
        assert slot in schema["required"]
    assert schema["properties"]["gesture"]["enum"][-1] is None  # an enum slot stays nullable
    assert "turn_on (object, destination)" in schema["properties"]["action"]["description"]
    assert schema["additionalProperties"] is False


def test_the_action_list_is_written_once_in_the_declarations():
    envelope = json.loads(TOOL_ENVELOPE_FILE.read_text())
    assert "enum" not in envelope["function"]["parameters"]["properties"]["action"]
    names = load_actions().names
    gate = SafetyGate(SafetyConfig())
    assert SafetyConfig().allowed_actions is None and gate.allowed == set(names)
    rules = load_rules()
    assert {f.action.name for fs in rules.by_head.values() for f in fs} == set(names)
    assert {"turn_on", "turn_off", "follow", "come", "gesture"} <= set(names)


def test_a_frame_that_captures_a_slot_its_action_lacks_is_a_clear_error(tmp_path):
    bad = tmp_path / "actions.yaml"
    bad.write_text(
        "extends: default\n"
        "actions:\n"
        "  juggle:\n"
        "    description: juggle balls\n"
        "    slots: [object]\n"
        "    verbs: [juggle]\n"
        "    frames: ['{verb} {object} for {recipient}']\n"
    )
    with pytest.raises(
        IntentRulesError, match=r"actions.yaml: actions.juggle.frames.0: \{recipient\}"
    ):
        load_rules(actions=load_actions(bad))


def test_a_call_from_an_intent_validates_and_bad_calls_name_the_field():
    intent = intents_in_text("Sure, I'll pick up the red cup.")[0]
    call = call_from_intent(intent)
    assert call["object"] == "red cup" and call["utterance"] == "Sure, I'll pick up the red cup."
    assert call["destination"] is None and call["gesture"] is None  # every slot, null if unused
    assert call["id"] != call_from_intent(intent)["id"]  # unique per call
    with pytest.raises(ToolCallError, match="action"):
        validate_call({**call, "action": "launch_rocket"})
    with pytest.raises(ToolCallError, match="confidence"):
        validate_call({**call, "confidence": 1.5})
    with pytest.raises(ToolCallError, match="extra"):
        validate_call({**call, "extra": 1})
    with pytest.raises(ToolCallError, match="gesture"):
        validate_call({**call, "gesture": "moonwalk"})


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
    assert gate.check({"action": "stop", "confidence": 0.9}) is None  # cancels_all: never limited
    now[0] = 10.5
    assert gate.check(ok) is None  # the window moved on


def test_an_unknown_action_in_the_allowlist_is_a_config_error(tmp_path):
    from orchestrator.config import load_config
    from track2_voice.common.errors import ConfigError

    with pytest.raises(ConfigError, match="slow_loop.safety.allowed_actions.*unknown action"):
        load_config(overrides={"slow_loop.safety.allowed_actions": ["fly"]})
