"""Secrets kept between runs in the state directory: made once, readable by the owner only.

Why files and not defaults in code: a value printed in the docs or the source is known to
everyone; one made on first run is known only to whoever can read the user's state directory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 24
MIN_CHARS = 16


def load_or_make_secret(state_dir: str | Path, name: str, nbytes: int = SECRET_BYTES) -> str:
    """The secret in ``state_dir/name``; a new random one (mode 0600) if missing or too short."""
    d = Path(state_dir).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    if p.exists():
        value = p.read_text(encoding="utf-8").strip()
        if len(value) >= MIN_CHARS:
            return value
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value
