"""Action declarations as data: a new action added in a config file, with no code, reaches the
intent watcher, the allowlist, the OpenAI tool form and a robot over a real WebSocket."""

from __future__ import annotations

import json

import httpx
import pytest

from orchestrator.brain.actions import ActionsError, load_actions
from orchestrator.brain.intent_rules import load_rules
from orchestrator.brain.intents import IntentConfig, IntentWatcher, intents_in_text
from orchestrator.bus import Bus
from orchestrator.config import load_config
from orchestrator.runtime.brain_host import BrainHost
from orchestrator.runtime.robot_runner import InProcessRobot
from tests.conftest import creature
from tests.slow_support import slow_cfg, speak, statuses, wait_until
from track2_voice.common.errors import ConfigError

FEED = """\
extends: default
actions:
  feed:
    description: feed a pet
    slots: [object]
    requires: [object]
    verbs: [feed]
"""


@pytest.fixture()
def feed_file(tmp_path):
    p = tmp_path / "my_actions.yaml"
    p.write_text(FEED)
    return p


def test_an_action_added_in_a_file_reaches_a_robot_the_allowlist_and_the_tool_form(
    tmp_path, feed_file
):
    slow = BrainHost(slow_cfg(tmp_path, **{"actions.file": str(feed_file)}), Bus()).start()
    bot = InProcessRobot(slow.robot_url, slow.token, 0.05).start()
    try:
        tools = httpx.get(f"{slow.http_url}/tools").json()
        enum = tools[0]["function"]["parameters"]["properties"]["action"]["enum"]
        assert enum[-1] == "feed" and "pick_up" in enum  # the default set, extended
        assert "feed" in slow.run_sync(lambda: slow.dispatcher.gate.allowed)
        speak(slow.bus, "Okay, I'll feed the cat.")
        wait_until(lambda: list(statuses(slow).values()) == ["succeeded"], what="feed succeeded")
        args = bot.robot.received[0]["arguments"]
        assert args["action"] == "feed" and args["object"] == "cat"
        slow.run_sync(lambda: slow.dispatcher.schema.validate(args))
    finally:
        bot.stop()
        slow.stop()


def test_the_allowlist_may_name_the_new_action_and_nothing_undeclared(feed_file):
    key = {"slow_loop.actions.file": str(feed_file)}
    cfg = load_config(overrides={**key, "slow_loop.safety.allowed_actions": ["feed", "stop"]})
    assert cfg.slow_loop.safety.allowed_actions == ["feed", "stop"]
    with pytest.raises(ConfigError, match="unknown action"):
        load_config(overrides={"slow_loop.safety.allowed_actions": ["feed"]})  # not declared


def test_the_cli_fires_and_lists_the_new_action(feed_file):
    flag = f"slow_loop.actions.file={feed_file}"
    r = creature("intent", "--set", flag, "Feeding the goldfish now.")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[0])
    assert out["tool_call"]["arguments"]["action"] == "feed"
    assert out["tool_call"]["arguments"]["object"] == "goldfish"
    r = creature("intent", "--set", flag, "--tool")
    assert r.returncode == 0 and "feed (object): feed a pet" in r.stdout


def test_actions_can_be_removed_and_replaced(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(
        "extends: default\nremove: [water, fold]\n"
        "actions:\n  stop:\n    description: stop\n    cancels_all: true\n    verbs: [stop, pause]\n"
    )
    actions = load_actions(p)
    assert "water" not in actions.names and "fold" not in actions.names
    rules = load_rules(actions=actions)
    got = intents_in_text("Okay, pausing now.", IntentWatcher(IntentConfig(), rules))
    assert [g.action for g in got] == ["stop"]
    assert intents_in_text("I'll water the plants.", IntentWatcher(IntentConfig(), rules)) == []


@pytest.mark.parametrize(
    "body,message",
    [
        (
            "actions:\n  x:\n    description: d\n    verbs: [x]\n    colour: red\n",
            r"actions.x: unknown key",
        ),
        (
            "actions:\n  x:\n    description: d\n    requires: [object]\n    verbs: [x]\n",
            r"actions.x.requires",
        ),
        ("actions:\n  Bad-Name:\n    description: d\n    verbs: [x]\n", r"lower_snake_case"),
        ("actions:\n  x:\n    description: d\n", r"actions.x: give 'verbs'"),
        ("extends: default\nremove: [juggle]\n", r"remove: 'juggle'"),
        (
            "extends: default\nactions:\n  g:\n    description: d\n    slots: [gesture]\n"
            "    verb_slot: gesture\n    verbs: {salute: salute}\n",
            r"not in slots.gesture.enum",
        ),
        ("slots: []\nactions: {}\n", r"slots: expected a mapping"),
    ],
)
def test_a_bad_declaration_names_the_file_and_key(tmp_path, body, message):
    p = tmp_path / "bad_actions.yaml"
    p.write_text(body)
    with pytest.raises(ActionsError, match=message) as e:
        load_actions(p)
    assert "bad_actions.yaml" in str(e.value)


def test_a_bad_actions_file_is_one_clear_line_and_exit_code_2(tmp_path):
    p = tmp_path / "bad_actions.yaml"
    p.write_text("actions:\n  x:\n    description: d\n    requires: [object]\n    verbs: [x]\n")
    r = creature("intent", "--set", f"slow_loop.actions.file={p}", "I'll x it.")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "bad_actions.yaml: actions.x.requires" in r.stderr
