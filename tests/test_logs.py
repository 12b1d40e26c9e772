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
