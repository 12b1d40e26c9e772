"""The ``creature`` command line: one sub-command per module in ``orchestrator.cli.commands``."""

from orchestrator.cli.main import main

__all__ = ["main"]
