"""Transfer progress as periodic log lines, for cron and other non-terminals.

A terminal gets rich progress bars instead (``alcapctl.display.TransferBars``); both take
the same calls.  Transfers shorter than ``interval`` leave no line above debug level.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import structlog

__all__ = ["LogProgress"]

log = structlog.get_logger("alcapctl.archive.progress")

_MB = 1e6


@dataclass
class _Transfer:
    total: int | None
    done: int
    began: float
    first: int
    said: float


class LogProgress:
    """Log each transfer's bytes, percentage and rate every ``interval`` seconds."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._transfers: dict[str, _Transfer] = {}
        self._lock = threading.Lock()

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        now = time.monotonic()
        with self._lock:
            self._transfers[name] = _Transfer(total, done, now, done, now)

    def advance(self, name: str, nbytes: int) -> None:
        now = time.monotonic()
        with self._lock:
            t = self._transfers.get(name)
            if t is None:
                return
            t.done += nbytes
            if now - t.said < self.interval:
                return
            t.said = now
        self._say("transfer progress", name, t, now)

    def finish(self, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            t = self._transfers.pop(name, None)
        if t is not None:
            long = now - t.began >= self.interval
            self._say("transfer ended", name, t, now, debug=not long)

    @staticmethod
    def _say(event: str, name: str, t: _Transfer, now: float, *, debug: bool = False) -> None:
        elapsed = max(now - t.began, 1e-9)
        fields = {
            "file": name,
            "mb": round(t.done / _MB, 1),
            "rate_mb_s": round((t.done - t.first) / _MB / elapsed, 1),
        }
        if t.total:
            fields["percent"] = round(100 * t.done / t.total, 1)
        (log.debug if debug else log.info)(event, **fields)
