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
import stat
import tempfile
import time
from pathlib import Path

from face.state_files import PRIVATE_DIR, PRIVATE_FILE
from track2_voice.common.errors import ConfigError

log = logging.getLogger(__name__)
APP = "creature"
OLD_PHONE_DIR = Path("~/.config/creature")
PHONE_FILES = ("phone-token", "phone-cert.pem", "phone-key.pem")
RECORDS = "records"
OUTBOX = "outbox.sqlite3"
ROBOT_TOKEN = "robot-token"
WEBHOOK_SECRET = "webhook-secret"
# the state directory's own files: made 0600 at every start, whatever mode they had
PRIVATE_FILES = (
    *PHONE_FILES,
    ROBOT_TOKEN,
    WEBHOOK_SECRET,
    "telephony-token",  # orchestrator.runtime.telephony_link.TOKEN_FILE
    "model-server-token",  # orchestrator.cli.commands.model_server.TOKEN_FILE
    OUTBOX,
    f"{OUTBOX}-wal",
    f"{OUTBOX}-shm",
)


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / APP


def state_dir(configured: str | None, key: str = "state_dir") -> Path:
    """The state directory, made (mode 0700) if missing; ``ConfigError`` names ``key``."""
    d = Path(configured).expanduser() if configured else default_state_dir()
    if d.is_dir() and d.stat().st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"{key}: {d} is a shared directory (sticky, like /tmp); "
            "expected a directory of the creature's own"
        )
    try:
        d.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        # a probe of this process's own: creatures starting together must not unlink each other's
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=d)
        os.close(fd)
        os.unlink(probe)
        make_private(d)
    except OSError as e:
        raise ConfigError(f"{key}: cannot use {d} as the state directory ({e.strerror})") from None
    return d


def make_private(d: Path) -> None:
    """The state directory 0700, its secrets, outbox and records 0600 (records/ 0700),
    whatever an older version, a copy or a loose umask left: the mode a file was made with
    is kept by every later write, so it is set here at each start."""
    os.chmod(d, PRIVATE_DIR)
    for name in PRIVATE_FILES:
        if (d / name).is_file():
            os.chmod(d / name, PRIVATE_FILE)
    records = d / RECORDS
    if records.is_dir():
        os.chmod(records, PRIVATE_DIR)
        for f in records.iterdir():
            if f.is_file() and not f.is_symlink():
                os.chmod(f, PRIVATE_FILE)


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
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
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
