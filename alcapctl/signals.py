"""Signals: SIGINT, SIGTERM and SIGHUP end the run loop as one exception; abort cannot be cut.

Each signal keeps its own exit code (128 + its number), so a shell or cron sees which one
it was: Ctrl-C 130, SIGHUP (an ssh session that dropped) 129, SIGTERM 143.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import structlog

__all__ = ["Interrupted", "deferred_signals", "signals_as_interrupt"]

log = structlog.get_logger("alcapctl.signals")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A signal asked the process to end; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``Interrupted``."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Within the block, the three signals are noted, not obeyed: an abort runs to its end."""
    received: list[int] = []
    if not _in_main_thread():
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        log.warning("abort in progress; it will finish before alcapctl exits")

    previous = {sig: signal.signal(sig, note) for sig in _SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
