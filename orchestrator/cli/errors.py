"""Which errors the command line reports as one line (exit 2) rather than a traceback.

The project's own say so by their base (``track2_voice.common.errors``): a :class:`UserError`
means the user gave something wrong and its message names it; any other error is a bug and keeps
its traceback. No list of the project's classes is kept here, so a new user error needs no entry.
"""

from __future__ import annotations

from orchestrator.cli.optional_stacks import missing_stack
from track2_voice.common.errors import ConfigError, UserError

# the builtin errors a command lets through for a path the user named (``open`` and friends
# already say which path and what is wrong with it)
PATH_ERRORS: tuple[type[OSError], ...] = (FileExistsError, FileNotFoundError, NotADirectoryError)


def user_message(e: BaseException) -> str | None:
    """The line the CLI prints after ``creature: `` for an error the user can fix, else None.

    A configuration error's message starts with where the value came from, so it needs no
    ``error:``; a missing optional stack says what installs it."""
    if isinstance(e, ConfigError):
        return str(e)
    stack = missing_stack(e)
    if stack is not None:
        return stack
    if isinstance(e, (UserError, *PATH_ERRORS)):
        return f"error: {e}"
    return None
