"""``--log-format json``: one JSON object per log line, on every command; the default text
format stays as it was."""

from __future__ import annotations

import json
import re

from tests.conftest import creature

RUN = ("run", "--backend", "replay", "--max-frames", "3")


def test_json_logs_are_one_object_per_line(speech_wav) -> None:
    r = creature(*RUN, "--input", str(speech_wav), "--log-format", "json")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
    assert records, "expected at least the backend's start to be logged"
    for rec in records:
        assert {"timestamp", "level", "logger", "message"} <= rec.keys()
    start = next(x for x in records if x["message"] == "starting backend replay")
    assert start["level"] == "INFO" and start["logger"] == "orchestrator.runtime.voice_session"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", start["timestamp"])


def test_the_config_key_does_the_same_and_text_stays_the_default(speech_wav) -> None:
    r = creature(*RUN, "--input", str(speech_wav), "--set", "log.format=json")
    assert json.loads(r.stderr.splitlines()[0])["level"]
    r = creature(*RUN, "--input", str(speech_wav))
    assert re.search(
        r"^\d\d:\d\d:\d\d INFO orchestrator.runtime.voice_session: starting backend replay$",
        r.stderr,
        re.M,
    ), r.stderr


def test_every_command_takes_the_option() -> None:
    from orchestrator.cli.main import _commands, build_parser

    leaves = list(_commands(build_parser()))
    assert len(leaves) >= 11  # run demo serve checkpoint-tiny scene-build/show config intent ...
    for p in leaves:
        assert "--log-format" in p._option_string_actions, p.prog
    r = creature("scene", "show", "greeting", "--log-format", "json")
    assert r.returncode == 0, r.stderr


def test_a_log_record_clears_the_meter_line_first(monkeypatch) -> None:
    """On a terminal (a real pty here) the mouth meter is redrawn with ``\\r`` and no
    newline; a log record written then must not start at the meter's end."""
    import logging
    import os
    import pty
    import select
    import sys

    from orchestrator.bus import Bus
    from orchestrator.cli import logs
    from orchestrator.cli.terminal_view import TerminalView
    from orchestrator.runtime.io_loop import IoLoop
    from tests.slow_support import frame

    master, slave = pty.openpty()
    term = os.fdopen(slave, "w", encoding="utf-8")
    seen = bytearray()

    def read_until(marker: bytes, timeout: float = 10.0) -> None:
        while marker not in seen:
            ready, _, _ = select.select([master], [], [], timeout)
            assert ready, f"no {marker!r} on the terminal; got {bytes(seen)!r}"
            seen.extend(os.read(master, 4096))

    monkeypatch.setattr(sys, "stderr", term)
    logs.configure(logging.INFO)
    bus, io = Bus(), IoLoop("test-view").start()
    view = TerminalView(bus, io, stream=term)
    try:
        bus.publish(frame(0, text="hello there"))
        read_until(b"] hello there")
        logging.getLogger("creature.test").warning("a log record")
        read_until(b"a log record")
    finally:
        view.close()
        io.stop()
        for h in list(logging.getLogger().handlers):  # none left on the closed pty
            if getattr(h, "_creature", False):
                logging.getLogger().removeHandler(h)
        term.close()
        os.close(master)
    before = bytes(seen).split(b"] hello there", 1)[1].split(b"a log record")[0]
    assert before.startswith(b"\r\x1b[K"), bytes(seen)
