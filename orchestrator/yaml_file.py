"""Read a YAML file whose top level is a mapping, with errors that name the file.

Shared by every loader of data in ``configs/`` (presets, the affect map, intents, the
creature's config); each passes its own error class and what the file is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(
    path: str | Path, what: str, error: type[Exception], allow_empty: bool = True
) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise error(f"{p}: {what} file not found")
    if p.is_dir():
        raise error(f"{p}: is a directory; expected a {what} YAML file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise error(f"{p}: not a text file (not UTF-8); expected a {what} YAML file") from None
    except OSError as e:
        raise error(f"{p}: cannot read the {what} file ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise error(f"{p}: not valid YAML: {e}") from e
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise error(f"{p}: expected a mapping at the top, got {type(data).__name__}")
    return data
