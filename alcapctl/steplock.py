"""Per-production, per-user step locks (flock) so overlapping cron invocations skip quietly."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["StepBusy", "holder", "step_lock"]


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


@contextmanager
def step_lock(workdir: Path, user: str) -> Iterator[Path]:
    """Hold ``<workdir>.<user>.lock`` exclusively, or raise StepBusy at once.

    The lock file sits next to the production's work directory; flock is released by
    the kernel when the process dies, so a killed cron job never leaves it stale.
    """
    path = workdir.parent / f"{workdir.name}.{user}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
