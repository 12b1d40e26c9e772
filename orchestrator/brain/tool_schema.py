"""The ``do_physical_task`` tool's JSON Schema (configs/tools/do_physical_task.json), in OpenAI
function-tool form. It is the one home of the action list: the config's allowlist, the intent
rules and the robot protocol all take their actions from its ``action`` enum.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

TOOL_FILE = Path(__file__).resolve().parents[2] / "configs" / "tools" / "do_physical_task.json"
TOOL_NAME = "do_physical_task"


@lru_cache(maxsize=1)
def tool_definition() -> dict[str, Any]:
    """The tool in OpenAI function-tool form (served at GET /tools)."""
    return json.loads(TOOL_FILE.read_text(encoding="utf-8"))


def parameters_schema() -> dict[str, Any]:
    return tool_definition()["function"]["parameters"]


def actions() -> tuple[str, ...]:
    """Every action a robot can be asked for, in the schema's order."""
    return tuple(parameters_schema()["properties"]["action"]["enum"])
