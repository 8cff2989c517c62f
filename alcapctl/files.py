"""Small file operations shared by the steps: guarded deletion of transient files, and the
one decision of what a production's clean-up may delete."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

__all__ = ["may_delete", "remove_all", "remove_quietly"]


def may_delete(
    path: Path,
    *,
    own_dirs: Sequence[Path],
    attempt_started: float | None,
    recorded_elsewhere: Collection[str],
) -> bool:
    """Whether a production's clean-up may delete ``path``.

    Only what the production wrote: a file under its own directories (staging, work), or
    one modified since its own attempt's job script was written (``attempt_started``, that
    script's mtime; None when it has none), and never a path another production or run
    has recorded as an output.  A file older than the attempt was there before it: another
    production's (an output template that resolves to its files), never ours to delete.
    """
    if str(path) in recorded_elsewhere:
        return False
    try:
        modified = os.lstat(path).st_mtime
    except FileNotFoundError:
        return True  # nothing to lose; its .part sibling may still be ours
    folder = path.parent.resolve()
    if any(folder.is_relative_to(own.resolve()) for own in own_dirs):
        return True
    return attempt_started is not None and modified >= attempt_started


def remove_all(paths: list[Path]) -> None:
    """Delete every path that exists."""
    for path in paths:
        path.unlink(missing_ok=True)


def remove_quietly(path: str | Path) -> bool:
    """Delete ``path`` and its ``.part`` if they exist; True if ``path`` was deleted."""
    target = Path(path)
    for candidate in (target, target.with_name(target.name + ".part")):
        try:
            os.unlink(candidate)
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            return False
        if candidate == target:
            return True
    return False
