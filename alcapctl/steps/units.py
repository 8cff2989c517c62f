"""Where a step's reads and writes go: each in a transaction of its own, or all in one unit.

A step takes a ``Units`` and returns what it did.  ``OwnTransactions`` (what a command
gives) begins and commits a transaction per read or write; ``InUnit`` runs them all in
the one unit of work its caller holds open (the run loop's grouped cycle, see
``steps/run.py``), which commits only when the caller's transaction does.  Either way the
step leaves the printing of its events to its caller; a step that was given an open unit
also hands back the files to remove, for after that unit's commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from alcapctl.files import remove_all
from alcapctl.store import ProductionRecord, RunTable, Store

__all__ = ["InUnit", "OwnTransactions", "Units", "hand_back"]

T = TypeVar("T")


class Units(Protocol):
    @property
    def open(self) -> bool:
        """True when a caller holds the unit open: it commits, and acts afterwards."""
        ...

    def read(self, fn: Callable[[RunTable], T]) -> T: ...

    def write(self, fn: Callable[[RunTable], T]) -> T: ...


@dataclass(frozen=True)
class OwnTransactions:
    """Each read and each write is a transaction of its own, committed when it returns."""

    store: Store
    record: ProductionRecord
    open = False

    def read(self, fn: Callable[[RunTable], T]) -> T:
        return self.store.runs(self.record, fn, write=False)

    def write(self, fn: Callable[[RunTable], T]) -> T:
        return self.store.runs(self.record, fn, write=True)


@dataclass(frozen=True)
class InUnit:
    """Every read and write in the unit of work the caller began and will commit."""

    unit: RunTable
    open = True

    def read(self, fn: Callable[[RunTable], T]) -> T:
        return fn(self.unit)

    def write(self, fn: Callable[[RunTable], T]) -> T:
        return fn(self.unit)


def hand_back(units: Units, files: list[Path]) -> list[Path]:
    """The files a step must see removed once its writes are committed: removed here when
    its own transaction already committed, else handed back to the unit's owner."""
    if units.open:
        return files
    remove_all(files)
    return []
