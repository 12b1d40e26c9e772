"""The tool-call outbox: a SQLite file every call is written to before it is sent anywhere.

A robot that is offline gets its calls, in order, when it connects; a restart of the creature
reopens the file and resumes every call that has not reached a terminal status. WAL with
``synchronous=NORMAL`` keeps a commit well under a millisecond and survives a process crash.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from face.state_files import touch_private
from orchestrator.brain.calls import TERMINAL, CallStatus
from orchestrator.brain.outbox_lock import OutboxLock
from track2_voice.common.errors import UserError

__all__ = ["Outbox", "OutboxCall", "OutboxError", "OutboxLock", "open_outbox"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    webhook TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    t REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_open ON calls(status);
CREATE TABLE IF NOT EXISTS cancel_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    reason TEXT NOT NULL,
    t REAL NOT NULL
);
"""


@dataclass
class OutboxCall:
    seq: int
    id: str
    args: dict[str, Any]
    status: CallStatus
    reason: str | None
    attempts: int
    webhook: str | None
    robot: str | None = None  # the name of the robot it was sent to: only that one may do it
    created: float = 0.0


class OutboxError(UserError, ValueError):
    """The outbox file cannot be used (a directory, not a database, a missing folder)."""


def _checked(p: Path, key: str) -> None:
    if p.is_dir():
        raise OutboxError(f"{key}: {p} is a directory; expected a SQLite file")
    if not p.parent.is_dir():
        raise OutboxError(f"{key}: {p}: folder {p.parent} does not exist")


def open_outbox(path: str | Path, key: str, own: bool = True) -> Outbox:
    """An :class:`Outbox`, or one clear ``OutboxError`` naming ``key`` and the file. ``own``:
    this process becomes the outbox's one creature (refused when another holds it)."""
    p = Path(path)
    _checked(p, key)
    lock = None
    if own:
        lock = OutboxLock(p)
        if not lock.acquire():
            raise OutboxError(
                f"{key}: {p} is in use by another creature process (pid {lock.owner()}); stop "
                "it, or give this one its own state directory (--set state_dir=DIR)"
            )
    try:
        box = Outbox(p)
    except sqlite3.DatabaseError as e:
        if lock is not None:
            lock.release()
        raise OutboxError(f"{key}: {p}: not a usable SQLite outbox ({e})") from None
    box.lock = lock
    return box


class Outbox:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise FileNotFoundError(f"{self.path}: directory {self.path.parent} does not exist")
        self.lock: OutboxLock | None = None
        if not self.path.is_dir():
            try:
                touch_private(self.path)  # 0600: SQLite gives its -wal and -shm the same mode
            except OSError:
                pass  # sqlite3.connect below names what is wrong with the path
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:  # the calls are private, whatever mode an older file had (its -wal/-shm follow)
            os.chmod(self.path, 0o600)
        except OSError:
            pass  # not ours to change: it still works
        try:
            self._db.execute("PRAGMA busy_timeout=2000")  # `creature calls` writes beside us
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(calls)")}
            if "robot" not in cols:  # an outbox from before calls had an owner
                self._db.execute("ALTER TABLE calls ADD COLUMN robot TEXT")
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def prune(self, older_than_s: float) -> int:
        """Delete settled calls (and their history) last updated more than ``older_than_s``
        ago; open calls are never pruned. Returns how many calls went."""
        if older_than_s <= 0:
            return 0
        cutoff = time.time() - older_than_s
        marks = ",".join("?" * len(TERMINAL))
        terminal = [s.value for s in TERMINAL]
        with self._db:
            ids = [
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM calls WHERE status IN ({marks}) AND updated < ?",
                    [*terminal, cutoff],
                )
            ]
            self._db.executemany("DELETE FROM history WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM calls WHERE id = ?", [(i,) for i in ids])
        return len(ids)

    def close(self) -> None:
        self._db.close()
        if self.lock is not None:
            self.lock.release()

    def _row(self, r: tuple) -> OutboxCall:
        return OutboxCall(
            r[0], r[1], json.loads(r[2]), CallStatus(r[3]), r[4], r[5], r[6], r[7], r[8]
        )

    _COLS = "seq, id, args, status, reason, attempts, webhook, robot, created"

    def add(
        self,
        args: dict[str, Any],
        status: CallStatus = CallStatus.QUEUED,
        reason: str | None = None,
        webhook: bool = False,
    ) -> OutboxCall:
        now = time.time()
        with self._db:
            cur = self._db.execute(
                "INSERT INTO calls (id, args, status, reason, webhook, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    args["id"],
                    json.dumps(args),
                    status.value,
                    reason,
                    "pending" if webhook else None,
                    now,
                    now,
                ),
            )
            self._db.execute(
                "INSERT INTO history (id, status, reason, t) VALUES (?, ?, ?, ?)",
                (args["id"], status.value, reason, now),
            )
        return OutboxCall(
            cur.lastrowid or 0,
            args["id"],
            args,
            status,
            reason,
            0,
            "pending" if webhook else None,
            None,
            now,
        )

    def get(self, call_id: str) -> OutboxCall | None:
        r = self._db.execute(f"SELECT {self._COLS} FROM calls WHERE id = ?", (call_id,)).fetchone()
        return self._row(r) if r else None

    def open_calls(self) -> list[OutboxCall]:
        """Every call not yet succeeded, failed, cancelled or rejected, oldest first."""
        marks = ",".join("?" * len(TERMINAL))
        rows = self._db.execute(
            f"SELECT {self._COLS} FROM calls WHERE status NOT IN ({marks}) ORDER BY seq",
            [s.value for s in TERMINAL],
        ).fetchall()
        return [self._row(r) for r in rows]

    def all_calls(self) -> list[OutboxCall]:
        rows = self._db.execute(f"SELECT {self._COLS} FROM calls ORDER BY seq").fetchall()
        return [self._row(r) for r in rows]

    def webhook_pending(self) -> list[OutboxCall]:
        rows = self._db.execute(
            f"SELECT {self._COLS} FROM calls WHERE webhook = 'pending' ORDER BY seq"
        ).fetchall()
        return [self._row(r) for r in rows]

    def mark_sent(self, call_id: str, robot: str | None = None) -> None:
        """Handed over (again); ``robot``: the robot's name, kept as the call's owner from the
        first time on (an owner is never replaced)."""
        with self._db:
            self._db.execute(
                "UPDATE calls SET status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,"
                " attempts = attempts + 1, updated = ?, robot = COALESCE(robot, ?) WHERE id = ?",
                (time.time(), robot, call_id),
            )

    # -- the operator's cancels (`creature calls cancel`), from another process -----------------
    def request_cancel(self, call_id: str, reason: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO cancel_requests (id, reason, t) VALUES (?, ?, ?)",
                (call_id, reason, time.time()),
            )

    def take_cancel_requests(self) -> list[tuple[str, str]]:
        """The cancels asked for since the last look, oldest first (each taken once)."""
        with self._db:
            rows = self._db.execute(
                "SELECT seq, id, reason FROM cancel_requests ORDER BY seq"
            ).fetchall()
            if rows:
                self._db.execute("DELETE FROM cancel_requests WHERE seq <= ?", (rows[-1][0],))
        return [(r[1], r[2]) for r in rows]

    def cancel_requests_pending(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM cancel_requests").fetchone()[0]

    def set_webhook(self, call_id: str, state: str) -> None:
        with self._db:
            self._db.execute("UPDATE calls SET webhook = ? WHERE id = ?", (state, call_id))

    def update(
        self, call_id: str, status: CallStatus, reason: str | None = None
    ) -> OutboxCall | None:
        """Move a call forward in its lifecycle. Returns the updated call, or None when the id
        is unknown or the update would move it backwards (a retry or a late duplicate)."""
        call = self.get(call_id)
        if call is None:
            return None
        if not call.status.may_become(status):
            return None  # a re-report, a late duplicate or a retry
        now = time.time()
        with self._db:
            self._db.execute(
                "UPDATE calls SET status = ?, reason = ?, updated = ? WHERE id = ?",
                (status.value, reason, now, call_id),
            )
            self._db.execute(
                "INSERT INTO history (id, status, reason, t) VALUES (?, ?, ?, ?)",
                (call_id, status.value, reason, now),
            )
        call.status, call.reason = status, reason
        return call

    def history(self, call_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT status FROM history WHERE id = ? ORDER BY seq", (call_id,)
        ).fetchall()
        return [r[0] for r in rows]
