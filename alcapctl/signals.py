"""Signal handling for the run loop: SIGTERM behaves like Ctrl-C, and abort cannot be cut."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import structlog

__all__ = ["deferred_signals", "sigterm_as_interrupt"]

log = structlog.get_logger("alcapctl.signals")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a scheduler, systemd, kill) raises KeyboardInterrupt."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Within the block, Ctrl-C and SIGTERM are noted, not obeyed: an abort runs to its end."""
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
