"""JSON from a peer: one parser that bounds what it takes, one error type for what it refuses."""

from __future__ import annotations

import json
from typing import Any

from track2_voice.common.errors import CreatureError


class MalformedJson(CreatureError, ValueError):
    """A message the shared parser refuses: not JSON, too large, too deep, or an integer with
    more digits than Python converts. One type, so every socket's handler answers it the same
    way (an error reply; the socket stays open)."""


class JsonTooDeep(MalformedJson):
    pass


class JsonTooBig(MalformedJson):
    pass


MAX_JSON_BYTES = 65536  # the default size cap: every socket's messages are smaller


def loads_bounded(raw: str | bytes, max_depth: int, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``json.loads`` for what a peer sends: anything it cannot take is a ``MalformedJson``
    (a ValueError): input over ``max_bytes`` (refused before parsing), nesting deeper than
    ``max_depth`` (the standard parser raises RecursionError, which no handler expects), an
    integer over Python's digit limit (4,300 by default: a ValueError from ``int``), bytes
    that are not UTF-8, or text that is not JSON."""
    size = len(raw)  # of text, characters: a cheap lower bound on its bytes
    if size > max_bytes:
        raise JsonTooBig(f"a {size}-byte JSON message is over {max_bytes} bytes")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, int's digit limit
        raise MalformedJson(str(e)[:200]) from None
    _check_depth(value, max_depth)
    return value


def _check_depth(value: Any, max_depth: int) -> None:
    """Walk the parsed value without recursion; raise ``JsonTooDeep`` past ``max_depth``."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def clip(text: str, n: int = 64) -> str:
    """An id or value to quote in an error reply, never longer than ``n``."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} chars)"
