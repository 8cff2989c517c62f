"""Per-production, per-user step locks (flock) so overlapping cron invocations skip quietly.

The lock file names its holder; a stop request file beside it (``alcapctl stop``) asks the
holding run loop to end.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["StepBusy", "holder", "request_stop", "step_lock", "take_stop_request"]


class StepBusy(Exception):
    """Another alcapctl process of this user already works on this production here."""


def _holder() -> str:
    """Who holds the lock, for the message of the process that finds it taken."""
    command = " ".join(["alcapctl", *sys.argv[1:]])
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}\n"


def holder(path: Path) -> str:
    """What the lock file says of its holder ("unknown" when it cannot be read)."""
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _lock_path(workdir: Path, user: str) -> Path:
    return workdir.parent / f"{workdir.name}.{user}.lock"


def _stop_path(workdir: Path, user: str) -> Path:
    return workdir.parent / f"{workdir.name}.{user}.stop"


def request_stop(workdir: Path, user: str, *, abort: bool) -> str | None:
    """Ask this user's process holding the step lock to end its loop; its holder, or None
    (and nothing written) when no process holds the lock."""
    try:
        with step_lock(workdir, user):
            return None
    except StepBusy as busy:
        _stop_path(workdir, user).write_text("abort\n" if abort else "keep\n")
        return holder(Path(str(busy)))


def take_stop_request(workdir: Path, user: str) -> str | None:
    """ "abort" or "keep" if a stop was asked for since the last look (the request is
    consumed), else None: one stat per call."""
    path = _stop_path(workdir, user)
    try:
        what = path.read_text().strip()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return "abort" if what == "abort" else "keep"


@contextmanager
def step_lock(workdir: Path, user: str, *, create: bool = True) -> Iterator[Path | None]:
    """Hold ``<workdir>.<user>.lock`` exclusively, or raise StepBusy at once.

    The lock file sits next to the production's work directory; flock is released by
    the kernel when the process dies, so a killed cron job never leaves it stale.  With
    ``create=False`` a lock file that does not exist is not made, and nothing is held
    (None): no alcapctl of this user ever worked on the production here.
    """
    path = _lock_path(workdir, user)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
    except FileNotFoundError:
        if create:
            raise
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepBusy(str(path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, _holder().encode())
        yield path
    finally:
        os.close(fd)
