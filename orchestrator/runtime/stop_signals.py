"""Ctrl-C and SIGTERM (how service managers and containers stop a program) stop a session
cleanly: while a session runs, both call one handler instead of raising, and the previous
handlers come back after. Python delivers signals to the main thread only, so elsewhere
(a test running a session on a thread) nothing is installed."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


@contextmanager
def on_stop_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """``handler(signum)`` on Ctrl-C or SIGTERM while the block runs."""
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, lambda signum, frame: handler(signum))
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
