"""The one root of the project's own exceptions.

Two kinds, told apart by their base and nothing else: a :class:`UserError` means the user gave
something wrong (a file, a key, a flag): the CLI prints its message as one line and exits 2. Any
other :class:`CreatureError` (and any other exception) is a bug and keeps its traceback. Each
module's own errors derive from one of these, so the CLI catches :class:`UserError` instead of a
hand-kept list."""

from __future__ import annotations


class CreatureError(Exception):
    """Root of every exception the project raises on purpose."""


class UserError(CreatureError):
    """Something the user gave is wrong: printed as one line naming it, exit code 2."""


class ConfigError(UserError):
    """A setting or a data file of the configuration is wrong; the message names the file (or
    flag) and the dotted key. Here, not beside the settings, so that a module that reads a data
    file (the brain's rule files) raises it without importing the whole settings tree."""
