"""Small file operations shared by the steps: guarded deletion of transient files."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["remove_all", "remove_quietly"]


def remove_all(paths: list[Path]) -> None:
    """Delete every path that exists."""
    for path in paths:
        path.unlink(missing_ok=True)


def remove_quietly(path: str | Path, inside: Path | None = None) -> bool:
    """Delete ``path`` if it exists (and lies under ``inside`` when given); True if deleted."""
    target = Path(path)
    if inside is not None:
        try:
            target.resolve().relative_to(inside.resolve())
        except ValueError:
            return False
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
