"""The ``do_physical_task`` tool in OpenAI function-tool form, generated from two data files:
``configs/tools/do_physical_task.json`` holds the envelope every call shares (id, utterance,
confidence, created, the tool's description) and ``configs/actions.yaml`` the action enum and
the slot properties. Nothing here lists an action: the declarations are their one home.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

import jsonschema

from orchestrator.brain.actions import SLOT_MAX_CHARS, ActionSet, load_actions
from orchestrator.brain.robot_protocol import TOOL_NAME
from orchestrator.data_files import TOOL_ENVELOPE_FILE
from track2_voice.common.errors import CreatureError


class ToolCallError(CreatureError, ValueError):
    """A call that does not match the schema (names the field and what was wrong)."""


@lru_cache(maxsize=1)
def _envelope() -> dict[str, Any]:
    return json.loads(TOOL_ENVELOPE_FILE.read_text(encoding="utf-8"))


def _action_list(actions: ActionSet) -> str:
    parts = []
    for a in actions.actions.values():
        slots = f" ({', '.join(a.slots)})" if a.slots else ""
        parts.append(f"{a.name}{slots}: {a.description}")
    return "; ".join(parts)


def build_definition(actions: ActionSet) -> dict[str, Any]:
    """The envelope with the action enum and one property per declared slot inserted after
    ``action``; every slot is required and nullable (null when the action does not use it)."""
    tool = copy.deepcopy(_envelope())
    params = tool["function"]["parameters"]
    props: dict[str, Any] = {}
    for key, value in params["properties"].items():
        props[key] = value
        if key != "action":
            continue
        value["enum"] = list(actions.names)
        value["description"] = f"{value.get('description', 'what to do')}: {_action_list(actions)}"
        for slot in actions.slots.values():
            prop: dict[str, Any] = {
                "type": ["string", "null"],
                "maxLength": SLOT_MAX_CHARS,
                "description": slot.description,
            }
            if slot.enum:
                prop["enum"] = [*slot.enum, None]
            props[slot.name] = prop
    params["properties"] = props
    required = list(params.get("required", []))
    at = required.index("action") + 1 if "action" in required else len(required)
    params["required"] = required[:at] + list(actions.slots) + required[at:]
    return tool


class ToolSchema:
    """One action set's tool: its OpenAI form, its JSON Schema and a validator for calls."""

    def __init__(self, actions: ActionSet) -> None:
        self.actions = actions
        self.definition = build_definition(actions)
        self.parameters = self.definition["function"]["parameters"]
        cls = jsonschema.validators.validator_for(self.parameters)
        cls.check_schema(self.parameters)
        self._validator = cls(self.parameters)

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.actions.slots)

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        errors = sorted(self._validator.iter_errors(args), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.path) or "(arguments)"
            raise ToolCallError(f"{TOOL_NAME}: {where}: {e.message}")
        return args


_BUILT: dict[int, ToolSchema] = {}


def tool_schema(actions: ActionSet | None = None) -> ToolSchema:
    """The tool for ``actions`` (default: configs/actions.yaml), built once per action set."""
    actions = actions or load_actions()
    built = _BUILT.get(id(actions))
    if built is None or built.actions is not actions:
        built = _BUILT[id(actions)] = ToolSchema(actions)
    return built


def _default() -> ToolSchema:
    return tool_schema()


def tool_definition() -> dict[str, Any]:
    """The default tool in OpenAI function-tool form."""
    return _default().definition


def parameters_schema() -> dict[str, Any]:
    return _default().parameters


def actions() -> tuple[str, ...]:
    """Every action of the default declarations, in their order."""
    return _default().actions.names
