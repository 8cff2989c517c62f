"""Which kind every error the run loop meets is, decided here and nowhere else; and its backoff.

* transient: the scheduler, the archive (unreachable, or refusing our login), the
  database lock, the disk or the quota command failed this time.  No run changed state,
  no attempt was counted, no job was touched; the loop warns, backs off (one tenacity
  policy) and goes on.
* run: one run's input or job is at fault; the steps record a failed attempt themselves.
* fatal: a signal or an unexpected exception; the loop aborts (the 2014 behaviour).
"""

from __future__ import annotations

import errno
from enum import Enum

import tenacity

from alcapctl.archive.base import ArchiveRefused, ArchiveUnavailable, FetchError
from alcapctl.archive.space import SpaceUnknown
from alcapctl.batch.base import SchedulerError
from alcapctl.errors import LockTimeout

__all__ = ["Kind", "backoff_delay", "classify"]

BACKOFF_MAX = 300.0  # seconds: the longest pause a repeated transient fault makes

_TRANSIENT_ERRNO = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


class Kind(str, Enum):
    TRANSIENT = "transient"
    RUN = "run"
    FATAL = "fatal"


# Checked in order: a subclass comes before its base (ArchiveUnavailable is a FetchError).
_KINDS: tuple[tuple[type[BaseException], Kind], ...] = (
    (SchedulerError, Kind.TRANSIENT),
    (ArchiveUnavailable, Kind.TRANSIENT),
    (ArchiveRefused, Kind.TRANSIENT),  # FTP 530: the 2014 "Will try again later"
    (LockTimeout, Kind.TRANSIENT),
    (SpaceUnknown, Kind.TRANSIENT),
    (FetchError, Kind.RUN),
)


def classify(exc: BaseException) -> Kind:
    """The kind of ``exc``; anything not listed is fatal."""
    if isinstance(exc, OSError):
        return Kind.TRANSIENT if exc.errno in _TRANSIENT_ERRNO else Kind.FATAL
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
