"""Signals: SIGINT, SIGTERM and SIGHUP end the run loop as one exception; abort cannot be cut.

Each signal keeps its own exit code (128 + its number), so a shell or cron sees which one
it was: Ctrl-C 130, SIGHUP (an ssh session that dropped) 129, SIGTERM 143.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType

import structlog

__all__ = ["Interrupted", "deferred_signals", "signals_after", "signals_as_interrupt"]

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
def _noted(warning: str | None) -> Iterator[list[int]]:
    """Within the block, the three signals are noted in the list yielded, not obeyed."""
    received: list[int] = []
    if not _in_main_thread():
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if warning:
            log.warning(warning)

    previous = {sig: signal.signal(sig, note) for sig in _SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def deferred_signals() -> AbstractContextManager[list[int]]:
    """Within the block, the three signals are noted, not obeyed: an abort runs to its end."""
    return _noted("abort in progress; it will finish before alcapctl exits")


@contextmanager
def signals_after() -> Iterator[None]:
    """Within the block, the three signals wait; the first is raised as ``Interrupted``
    when the block ends (chained to the block's own error, if it raised one), so that a
    unit of work is committed whole before a signal is obeyed."""
    with _noted(None) as received:
        try:
            yield
        finally:
            if received:
                raise Interrupted(received[0])
