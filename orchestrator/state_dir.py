"""The creature's one state directory: the outbox, the session records, the secrets (robot
token, webhook secret, phone token) and the phone's self-signed certificate.

Where: the top-level config key ``state_dir``; null means ``$XDG_STATE_HOME/creature``, i.e.
``~/.local/state/creature``. Why one place: a restart from another working directory must
find the same outbox (queued calls resume) and the same secrets (robots and phones keep
working), and a record of a crashed session must never be overwritten by the next one.

Older versions kept the phone's certificate and token in ``phone.state_dir``
(``~/.config/creature``); ``migrate_phone_files`` copies them over once, so a bookmarked phone
URL keeps its token.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from orchestrator.config import ConfigError

log = logging.getLogger(__name__)
APP = "creature"
OLD_PHONE_DIR = Path("~/.config/creature")
PHONE_FILES = ("phone-token", "phone-cert.pem", "phone-key.pem")
RECORDS = "records"
OUTBOX = "outbox.sqlite3"
ROBOT_TOKEN = "robot-token"
WEBHOOK_SECRET = "webhook-secret"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / APP


def state_dir(configured: str | None, key: str = "state_dir") -> Path:
    """The state directory, made (mode 0700) if missing; ``ConfigError`` names ``key``."""
    d = Path(configured).expanduser() if configured else default_state_dir()
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = d / ".write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{key}: cannot use {d} as the state directory ({e.strerror})") from None
    return d


def migrate_phone_files(new: Path, old: Path = OLD_PHONE_DIR) -> list[str]:
    """Copy the phone's token and certificate from the old default place, once."""
    old = old.expanduser()
    copied = []
    if not old.is_dir() or old.resolve() == new.resolve():
        return copied
    for name in PHONE_FILES:
        src, dst = old / name, new / name
        if src.is_file() and not dst.exists():
            shutil.copy2(src, dst)
            os.chmod(dst, 0o600)
            copied.append(name)
    if copied:
        log.info("moved %s from %s to the state directory %s", ", ".join(copied), old, new)
    return copied


def new_record_path(directory: Path, stem: str) -> Path:
    """``directory/STEM-YYYYmmdd-HHMMSS.jsonl``, never an existing file."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{stem}-{stamp}.jsonl"
    n = 1
    while path.exists():
        path = directory / f"{stem}-{stamp}-{n}.jsonl"
        n += 1
    return path


def record_path(state: Path, given: str | None, stem: str) -> Path:
    """Where a session record goes: the given path, or a new timestamped file under
    ``STATE_DIR/records``. A given path that exists is kept, and the record goes next to it
    under a timestamped name (an old record is never truncated)."""
    if given is None:
        return new_record_path(state / RECORDS, stem)
    p = Path(given)
    if p.exists() and not p.is_dir():
        alt = new_record_path(p.parent, p.stem)
        log.warning("%s exists: recording to %s instead (never overwritten)", p, alt)
        return alt
    return p
