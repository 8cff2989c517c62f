"""Which kind every error the run loop meets is, decided here and nowhere else; and its backoff.

* transient: the scheduler, the archive (unreachable, or refusing our login), the
  database lock, the disk or the quota command failed this time.  No run changed state,
  no attempt was counted, no job was touched; the loop warns, backs off (one tenacity
  policy) and goes on.
* run: one run's input or job is at fault; the steps record a failed attempt themselves.
* drain: a configuration fault found mid-production (the archive refusing our login
  ``DRAIN_AFTER`` times in a row, a ConfigError: a netrc, checksum file, job script or
  MODULES file that can no longer be used): the loop takes no new work, reaps its running
  jobs to the end, hands its unstaged claims back, exits 2.
* fatal: a signal or an unexpected exception; the loop aborts (the 2014 behaviour).

A transient fault blocks only the step that met it (``StepFaults``): reaping goes on
while the archive is down, staging while the scheduler is.
"""

from __future__ import annotations

import errno
import time
from enum import Enum

import tenacity

from alcapctl.archive.base import ArchiveRefused, ArchiveUnavailable, FetchError
from alcapctl.archive.space import SpaceUnknown
from alcapctl.batch.base import SchedulerError
from alcapctl.errors import ConfigError, LockTimeout

__all__ = ["DRAIN_AFTER", "Kind", "StepFaults", "backoff_delay", "classify"]

BACKOFF_MAX = 300.0  # seconds: the longest pause a repeated transient fault makes

_TRANSIENT_ERRNO = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


class Kind(str, Enum):
    TRANSIENT = "transient"
    RUN = "run"
    DRAIN = "drain"
    FATAL = "fatal"


DRAIN_AFTER = 3  # the archive refusing our login this many times in a row drains


# Checked in order: a subclass comes before its base (ArchiveUnavailable is a FetchError).
_KINDS: tuple[tuple[type[BaseException], Kind], ...] = (
    (SchedulerError, Kind.TRANSIENT),
    (ArchiveUnavailable, Kind.TRANSIENT),
    (ArchiveRefused, Kind.TRANSIENT),  # FTP 530: the 2014 "Will try again later"
    (LockTimeout, Kind.TRANSIENT),
    (SpaceUnknown, Kind.TRANSIENT),
    (FetchError, Kind.RUN),
    (ConfigError, Kind.DRAIN),
)


def classify(exc: BaseException, in_a_row: int = 1) -> Kind:
    """The kind of ``exc``, the ``in_a_row``-th fault of its step in a row; anything not
    listed is fatal."""
    if isinstance(exc, OSError):
        return Kind.TRANSIENT if exc.errno in _TRANSIENT_ERRNO else Kind.FATAL
    if isinstance(exc, ArchiveRefused) and in_a_row >= DRAIN_AFTER:
        return Kind.DRAIN
    for error_type, kind in _KINDS:
        if isinstance(exc, error_type):
            return kind
    return Kind.FATAL


def backoff_delay(failures: int, pause: float) -> float:
    """Seconds to wait after ``failures`` transient faults in a row: doubling, capped."""
    wait = tenacity.wait_exponential(multiplier=max(pause, 1.0), max=BACKOFF_MAX)
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = max(failures, 1)
    return float(wait(state))


class StepFaults:
    """Per step of the loop: transient faults in a row, and when the step may try again."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self._in_a_row: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def due(self, step: str) -> bool:
        return time.monotonic() >= self._until.get(step, 0.0)

    def in_a_row(self, step: str) -> int:
        return self._in_a_row.get(step, 0)

    def failed(self, step: str) -> float:
        """Note a transient fault of ``step``; the seconds it now waits."""
        n = self._in_a_row[step] = self.in_a_row(step) + 1
        delay = backoff_delay(n, self.pause)
        self._until[step] = time.monotonic() + delay
        return delay

    def cleared(self, step: str) -> None:
        self._in_a_row.pop(step, None)
        self._until.pop(step, None)
