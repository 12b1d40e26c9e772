"""A session record (JSONL, one event a line) read back as the typed events that wrote it.

Why typed: the report, the replay and the tests dispatch on event types, as every live
consumer does, instead of on ``kind`` strings. A line of a kind this version does not know is
counted and skipped (records outlive code); a known line with a wrong shape is an error that
names the file and line. A last line cut short (the creature was killed mid-write) is skipped
with a warning, since everything before it is still good.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.brain import events as brain
from orchestrator.runtime import phone_call_events
from track2_voice import events as voice
from track2_voice.common.errors import UserError
from track2_voice.events import EVENT_KINDS, Event, FrameEvent

log = logging.getLogger(__name__)

# every event class registers its kind when it is defined; importing the modules that define
# them (above) is what makes the table whole
BY_KIND: dict[str, type[Event]] = EVENT_KINDS
EVENT_MODULES = (voice, brain, phone_call_events)
RECORD_DROPPED = "record_dropped"  # the recorder's own last line: events it could not write


class RecordReadError(UserError, ValueError):
    """A record that cannot be read: names the file, the line and what was wrong."""


@dataclass
class Record:
    path: Path
    events: list[Event] = field(default_factory=list)
    record_dropped: int = 0
    unknown: Counter[str] = field(default_factory=Counter)
    truncated_last_line: bool = False

    def of(self, *types: type[Event]) -> list:
        return [e for e in self.events if isinstance(e, types)]

    @property
    def frames(self) -> list[FrameEvent]:
        return self.of(FrameEvent)

    @property
    def start_t(self) -> float:
        """The earliest time stamp (brain events can come before the first frame)."""
        return min((e.t for e in self.events), default=0.0)

    @property
    def end_t(self) -> float:
        return max((e.t for e in self.events), default=0.0)


def parse_line(d: dict, where: str) -> Event | None:
    kind = d.get("kind")
    cls = BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    try:
        return cls.from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        raise RecordReadError(f"{where}: a {kind!r} line: {what}") from None


def read_record(path: str | Path) -> Record:
    """Every event of the record at ``path``, in file order."""
    p = Path(path)
    if not p.is_file():
        raise RecordReadError(f"{p}: no such record file (expected a JSONL session record)")
    rec = Record(p)
    with p.open(encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):
                log.warning("%s: the last line is cut short; ignored", where)
                rec.truncated_last_line = True
                continue
            raise RecordReadError(
                f"{where}: not JSON ({e.msg}); expected one event per line"
            ) from None
        if not isinstance(d, dict):
            raise RecordReadError(f"{where}: expected a JSON object with a 'kind'")
        if d.get("kind") == RECORD_DROPPED:
            rec.record_dropped += int(d.get("count", 0))
            continue
        ev = parse_line(d, where)
        if ev is None:
            rec.unknown[str(d.get("kind"))] += 1
            continue
        rec.events.append(ev)
    if not rec.events:
        raise RecordReadError(f"{p}: no events (expected a session record written with --record)")
    return rec
