"""Read a YAML file whose top level is a mapping, with errors that name the file.

Shared by every loader of data in ``configs/`` (presets, the affect map, intents, the
creature's config); each passes its own error class and what the file is called.

Bounded and fast: a file over ``MAX_BYTES`` is refused before it is parsed (the shipped files
are under 20 KB; a 50 MB YAML once took 400 s and 3.7 GB), and the parser is libyaml's
(``yaml.CSafeLoader``, ~10x faster than the pure-Python one) wherever PyYAML was built with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: fifty times the largest shipped file
SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_mapping(
    path: str | Path,
    what: str,
    error: type[Exception],
    allow_empty: bool = True,
    max_bytes: int = MAX_BYTES,
) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise error(f"{p}: {what} file not found")
    if p.is_dir():
        raise error(f"{p}: is a directory; expected a {what} YAML file")
    try:
        with p.open("rb") as f:
            raw = f.read(max_bytes + 1)  # never more than the cap, whatever the file claims
        if len(raw) > max_bytes:
            raise error(f"{p}: larger than {max_bytes} bytes; expected a {what} YAML file")
        data = yaml.load(raw.decode("utf-8"), Loader=SafeLoader)  # noqa: S506 (a safe loader)
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
