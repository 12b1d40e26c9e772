"""Secrets kept between runs in the state directory: made once, readable by the owner only.

Why files and not defaults in code: a value printed in the docs or the source is known to
everyone; one made on first run is known only to whoever can read the user's state directory.

Why modes are set, not only asked for at creation: ``os.open(..., 0o600)`` applies to a new
file only, so a file that already existed (made by an older version, copied in, or written
under a loose umask) would keep its 0644; every writer here ends with an explicit chmod.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 24
MIN_CHARS = 16
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(d: str | Path) -> Path:
    """``d`` made if missing, and mode 0700 whatever it was."""
    p = Path(d).expanduser()
    p.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(p, PRIVATE_DIR)
    return p


def write_private(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path``, mode 0600 whether or not the file existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), PRIVATE_FILE)
        f.write(data)


def touch_private(path: str | Path) -> None:
    """Make ``path`` exist with mode 0600 (before a library such as SQLite opens it: SQLite
    gives its -wal and -shm files the database file's mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def load_or_make_secret(state_dir: str | Path, name: str, nbytes: int = SECRET_BYTES) -> str:
    """The secret in ``state_dir/name``; a new random one (mode 0600) if missing or too short."""
    d = Path(state_dir).expanduser()
    d.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    p = d / name
    if p.exists():
        value = p.read_text(encoding="utf-8").strip()
        if len(value) >= MIN_CHARS:
            os.chmod(p, PRIVATE_FILE)
            return value
    value = secrets.token_urlsafe(nbytes)
    write_private(p, (value + "\n").encode("utf-8"))
    return value
