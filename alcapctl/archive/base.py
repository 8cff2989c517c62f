"""The interface every archive scheme implements, its errors, and the byte pump they share.

An archive brings one named input to a destination path in the staging directory.  It
writes ``<name>.part`` first and renames it into place only once the size is right, so a
truncated file is never mistaken for an input.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from alcapctl.errors import AlcapError, UsageError

__all__ = [
    "Archive",
    "ArchiveRefused",
    "ArchiveUnavailable",
    "FetchError",
    "Progress",
    "TransferCancelled",
    "part_path",
    "pump",
    "replace_part",
]

CHUNK = 1 << 20  # bytes per read: large enough that Python's loop costs nothing at 1 GB/s


class FetchError(AlcapError):
    """This input could not be fetched; the attempt fails with this reason."""


class ArchiveUnavailable(FetchError):
    """The archive itself cannot be reached; no run is to blame, so no attempt is counted."""


class ArchiveRefused(UsageError):
    """The archive refused our credentials (FTP 530): a step alone stops with exit 2, the
    run loop waits and tries again, as the 2014 script's "Will try again later" did."""


class TransferCancelled(AlcapError):
    """The step is stopping (Ctrl-C, an error elsewhere): a transfer in a thread gives up."""


class Progress(Protocol):
    """Receives the progress of transfers; several may run at once, in threads."""

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        """A transfer of ``name`` (re)starts with ``done`` of ``total`` bytes already there."""

    def advance(self, name: str, nbytes: int) -> None: ...

    def finish(self, name: str) -> None: ...


class Archive(ABC):
    """One source of inputs."""

    # The verb of the user-facing line, as the old script said it: "Downloading run: 2091".
    action = "Downloading"
    # False when inputs are used where they lie (nothing is written to the staging directory).
    copies = True
    # True when a fetch waits on the network, so that several are worth running in threads.
    parallel = False

    def recall(self, commands: list[str]) -> list[str]:
        """Send tape recall commands (``STAGE run02091.mid``); returns those sent."""
        return []

    @property
    def recalls(self) -> bool:
        """Whether this archive has a recall command to send."""
        return False

    @abstractmethod
    def fetch(self, name: str, dest: Path, progress: Progress | None = None) -> Path:
        """Bring ``name`` to ``dest`` and return the path a job reads (``dest`` if copied)."""


def part_path(dest: Path) -> Path:
    """Where an incomplete ``dest`` is written: never handed to a job."""
    return dest.with_name(dest.name + ".part")


def replace_part(part: Path, dest: Path, expected: int | None) -> Path:
    """Rename a complete ``.part`` into place; a wrong size deletes it and fails."""
    size = part.stat().st_size
    if expected is not None and size != expected:
        part.unlink(missing_ok=True)
        raise FetchError(f"{dest.name}: got {size} bytes, the archive has {expected}")
    os.replace(part, dest)
    part.unlink(missing_ok=True)  # a rename onto another link of one inode does nothing
    return dest


def pump(
    read_into: Callable[[memoryview], int],
    out: Path,
    name: str,
    progress: Progress | None,
    *,
    append: bool = False,
) -> int:
    """Copy until ``read_into`` returns 0; returns the bytes written by this call."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    written = 0
    with out.open("ab" if append else "wb") as fh:
        while n := read_into(view):
            fh.write(view[:n])
            written += n
            if progress is not None:
                progress.advance(name, n)
    return written
