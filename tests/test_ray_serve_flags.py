"""``creature model-server --ray`` flags are checked before Ray is imported: a bad value is
one line naming the flag and exit code 2, with or without Ray installed."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def keep_logging():
    """The CLI's main() points the root logger at this test's captured stderr; later tests
    must not log into that closed stream."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    root.handlers[:] = handlers


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--replicas", "0"], "--replicas must be at least 1, got 0"),
        (["--refusal-lanes", "0"], "--refusal-lanes must be at least 1"),
        (["--max-queued", "0"], "--max-queued must be at least 1"),
        (["--gpus-per-replica", "-1"], "--gpus-per-replica must be >= 0"),
        (["--graceful-shutdown-timeout", "0"], "--graceful-shutdown-timeout must be > 0"),
        (["--static", "/tmp"], "--static is not served with --ray"),
    ],
)
def test_bad_ray_flags_are_one_line_errors(flags, message, capsys, tmp_path):
    from orchestrator.cli import main

    argv = ["model-server", "--ray", "--checkpoint", str(tmp_path), "--token", "t" * 16]
    assert main(argv + flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
