"""The map from the creature's actions to ROS 2 action servers (a YAML file, validated here).

Why a map: a builder's arm, base or gripper already sits behind ROS 2 actions with their own
interfaces (``control_msgs/action/GripperCommand``, ``nav2_msgs/action/NavigateToPose``, ...).
The map says, per creature action, which server to send a goal to, which interface it speaks,
how the goal is filled from the call's slots, and where progress and outcome are read from the
feedback and result. Actions without an entry go to the generic ``do_physical_task`` entry (an
interface that carries the whole call), when the file has one.

Pure data: no rclpy here, so the file is checked (exit 2, one line) before ROS 2 starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GENERIC = "do_physical_task"  # the key of the generic entry
INTERFACE = re.compile(r"^[a-z][a-z0-9_]*/action/[A-Z][A-Za-z0-9]*$")
ACTION_NAME = re.compile(r"^/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
FIELD = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
# what a goal template may take from a call: the call's action, its utterance and its slots
CALL_KEYS = frozenset({"action", "id", "utterance"})


class MapError(ValueError):
    """A map file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Progress:
    """Where progress 0..1 is read from a feedback message: a float field already 0..1, or
    the length of a sequence field over ``of`` (``{count: sequence, of: 10}``)."""

    field: str
    of: float | None = None

    def read(self, feedback: Any) -> float | None:
        v = get_field(feedback, self.field)
        try:
            x = len(v) / self.of if self.of else float(v)
        except (TypeError, ValueError):
            return None
        return min(1.0, max(0.0, x))


@dataclass(frozen=True)
class Route:
    """One creature action's action server and how its messages are read and written."""

    action: str
    server: str
    interface: str
    goal: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    text: str | None = None  # a feedback field with a short status text
    success: str | None = None  # a result field (bool): false fails a SUCCEEDED goal
    reason: str | None = None  # a result field (string): why it failed

    @property
    def slots(self) -> tuple[str, ...]:
        """The call's slots the goal is filled from (what the robot declares it takes)."""
        out: list[str] = []
        for v in self.goal.values():
            if isinstance(v, str):
                out += [k for k in PLACEHOLDER.findall(v) if k not in CALL_KEYS and k not in out]
        return tuple(out)

    def goal_values(self, call: dict[str, Any]) -> dict[str, Any]:
        """The goal's field values for one call's arguments: a value that is exactly one
        placeholder takes the argument as it is ("" for a null slot in a string), others are
        formatted as text."""
        out: dict[str, Any] = {}
        for name, v in self.goal.items():
            if isinstance(v, str) and PLACEHOLDER.fullmatch(v):
                got = call.get(v[1:-1])
                out[name] = "" if got is None else got
            elif isinstance(v, str):
                out[name] = PLACEHOLDER.sub(lambda m: str(call.get(m.group(1)) or ""), v)
            else:
                out[name] = v
        return out


@dataclass(frozen=True)
class ActionMap:
    body: str
    routes: dict[str, Route]
    generic: Route | None = None

    def route(self, action: str) -> Route | None:
        return self.routes.get(action) or (
            Route(action, **{k: getattr(self.generic, k) for k in ROUTE_FIELDS})
            if self.generic is not None
            else None
        )


ROUTE_FIELDS = ("server", "interface", "goal", "progress", "text", "success", "reason")
ENTRY_KEYS = frozenset({"server", "interface", "goal", "progress", "text", "success", "reason"})


def get_field(msg: Any, path: str) -> Any:
    for part in path.split("."):
        msg = getattr(msg, part)
    return msg


def _endpoint(d: dict, where: str) -> tuple[str, str]:
    """The action server (a leading / added) and the interface it speaks."""
    server, interface = d.get("server"), d.get("interface")
    if not isinstance(server, str) or not ACTION_NAME.match(server):
        raise MapError(
            f"{where}.server: expected a ROS 2 action name like /arm/pick (got {server!r})"
        )
    if not isinstance(interface, str) or not INTERFACE.match(interface):
        raise MapError(
            f"{where}.interface: expected package/action/Type, e.g. test_msgs/action/Fibonacci"
            f" (got {interface!r})"
        )
    return (server if server.startswith("/") else "/" + server), interface


def _goal(d: dict, where: str) -> dict[str, Any]:
    goal = d.get("goal") or {}
    if not isinstance(goal, dict) or not all(isinstance(k, str) and FIELD.match(k) for k in goal):
        raise MapError(f"{where}.goal: expected field: value pairs (got {goal!r})")
    for k, v in goal.items():
        if not isinstance(v, (str, int, float, bool)):
            raise MapError(f"{where}.goal.{k}: expected a string, number or bool (got {v!r})")
    return dict(goal)


def _progress(progress: Any, where: str) -> Progress | None:
    """A feedback field already 0..1, or ``{count: FIELD, of: N}``."""
    if isinstance(progress, str) and FIELD.match(progress):
        return Progress(progress)
    if isinstance(progress, dict) and set(progress) == {"count", "of"}:
        of = progress["of"]
        if not isinstance(progress["count"], str) or not isinstance(of, (int, float)) or of <= 0:
            raise MapError(
                f"{where}.progress: expected {{count: FIELD, of: N > 0}} (got {progress!r})"
            )
        return Progress(progress["count"], float(of))
    if progress is None:
        return None
    raise MapError(
        f"{where}.progress: expected a feedback field (0..1) or {{count: FIELD, of: N}}"
        f" (got {progress!r})"
    )


def _entry(name: str, d: Any, where: str) -> Route:
    if not isinstance(d, dict):
        raise MapError(f"{where}: expected a mapping with server and interface (got {d!r})")
    extra = sorted(set(d) - ENTRY_KEYS)
    if extra:
        raise MapError(f"{where}.{extra[0]}: unknown key; expected one of {sorted(ENTRY_KEYS)}")
    server, interface = _endpoint(d, where)
    goal = _goal(d, where)
    progress = _progress(d.get("progress"), where)
    for key in ("text", "success", "reason"):
        v = d.get(key)
        if v is not None and not (isinstance(v, str) and FIELD.match(v)):
            raise MapError(f"{where}.{key}: expected a field name (got {v!r})")
    return Route(
        name, server, interface, goal, progress, d.get("text"), d.get("success"), d.get("reason")
    )


def parse_map(data: Any, source: str) -> ActionMap:
    if not isinstance(data, dict):
        raise MapError(f"{source}: expected a mapping with body and actions")
    extra = sorted(set(data) - {"version", "body", "actions", GENERIC})
    if extra:
        raise MapError(f"{source}: {extra[0]}: unknown key; expected body, actions, {GENERIC}")
    if data.get("version", 1) != 1:
        raise MapError(f"{source}: version: expected 1 (got {data.get('version')!r})")
    body = data.get("body", "ros2")
    if not isinstance(body, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", body):
        raise MapError(f"{source}: body: expected a name of letters, digits, _ . - (got {body!r})")
    actions = data.get("actions") or {}
    if not isinstance(actions, dict):
        raise MapError(f"{source}: actions: expected action: entry pairs")
    routes = {str(k): _entry(str(k), v, f"{source}: actions.{k}") for k, v in actions.items()}
    generic = data.get(GENERIC)
    gen = _entry(GENERIC, generic, f"{source}: {GENERIC}") if generic is not None else None
    if not routes and gen is None:
        raise MapError(f"{source}: no actions and no {GENERIC} entry: nothing to map")
    return ActionMap(body, routes, gen)


def load_map(path: str | Path) -> ActionMap:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise MapError(f"{p}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise MapError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_map(data, str(p))
