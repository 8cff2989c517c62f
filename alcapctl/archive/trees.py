"""rootana inputs: the trees a finished alcapana production recorded, read where they lie."""

from __future__ import annotations

import os
from pathlib import Path

from alcapctl.archive.base import Archive, FetchError, Progress

__all__ = ["BaseTrees"]


class BaseTrees(Archive):
    """The ``name`` of an input is the tree path of the base production; nothing is copied."""

    action = "Checking"
    copies = False

    def fetch(self, name: str, dest: Path, progress: Progress | None = None) -> Path:
        tree = Path(name)
        if not tree.is_file():
            raise FetchError(f"{tree}: the base production's tree is missing")
        if not os.access(tree, os.R_OK):
            raise FetchError(f"{tree}: the base production's tree is not readable")
        return tree
