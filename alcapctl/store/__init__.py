"""The production database.  All SQL of alcapctl lives in this package.

``Store`` opens a database (never creating one by accident), migrates a legacy 2014
database in place, and runs read and write transactions; ``RunTable`` holds the guarded
run-state changes used inside them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import Connection

from alcapctl.config import Production
from alcapctl.store import datasets as _datasets
from alcapctl.store import productions as _productions
from alcapctl.store.engine import Database, sqlite_path
from alcapctl.store.fastpath import Statements
from alcapctl.store.productions import InitResult
from alcapctl.store.records import DatasetRow, Failure, ProductionRecord, RunRecord
from alcapctl.store.runs import Owner, RunTable
from alcapctl.store.schema import (
    SCHEMA_VERSION,
    ensure_production_table,
    migrate,
    production_table_current,
    schema_version,
)

__all__ = [
    "SCHEMA_VERSION",
    "DatasetRow",
    "Failure",
    "InitResult",
    "Owner",
    "ProductionRecord",
    "RunRecord",
    "RunTable",
    "Store",
    "sqlite_path",
]

T = TypeVar("T")


class Store:
    """An open production database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements = Statements()  # this database's hot-path statements, built once
        self._known_datasets: set[str] = set()
        if self.db.read(schema_version) < SCHEMA_VERSION:
            self.db.write(migrate)
            self.db.identity()  # the id the migration wrote, read outside any transaction

    @classmethod
    def open(cls, url: str, lock_timeout: float = 60.0) -> Store:
        """Open an existing database; a missing one is an error that says how to create it."""
        return cls(Database(url, lock_timeout=lock_timeout))

    @classmethod
    def create(cls, url: str, lock_timeout: float = 60.0) -> tuple[Store, bool]:
        """Create a database (or bring an existing one up to date); True if it is new."""
        path = sqlite_path(url)
        existed = path is None or path.exists()
        # A new SQLite file starts in the rollback-journal mode (DELETE) we want.
        return cls(Database(url, lock_timeout=lock_timeout, create=True)), not existed

    @property
    def location(self) -> str:
        return self.db.location

    def read(self, fn: Callable[[Connection], T]) -> T:
        return self.db.read(fn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        return self.db.write(fn)

    @contextlib.contextmanager
    def patient(self) -> Iterator[None]:
        """Within the block, waits for the database lock have no deadline (an abort that
        must complete says that it waits, and waits)."""
        db = self.db
        timeout, budget = db.lock_timeout, db.lock_budget
        db.lock_timeout = db.lock_budget = math.inf
        try:
            yield
        finally:
            db.lock_timeout, db.lock_budget = timeout, budget

    def close(self) -> None:
        self.db.dispose()

    # -- conveniences used by several commands --------------------------------------------

    def find(self, prod: Production) -> ProductionRecord:
        record = self.read(lambda conn: _productions.find(conn, prod))
        self.ensure(record)
        return record

    def preview_init(self, prod: Production) -> tuple[int, bool, list[int]]:
        return self.read(lambda conn: _productions.preview_init(conn, prod))

    def ensure(self, record: ProductionRecord) -> None:
        """Add columns an older writer left out of the production's table.

        Checked in a read first: every command calls this, and only an old table needs
        the write lock.
        """
        if not self.read(lambda c: production_table_current(c, record.type, record.version)):
            self.write(lambda conn: ensure_production_table(conn, record.type, record.version))

    def productions(self) -> list[ProductionRecord]:
        return self.read(_productions.all_productions)

    def init(self, prod: Production) -> InitResult:
        return self.write(lambda conn: _productions.init_production(conn, prod))

    def import_datasets(self, rows: list[DatasetRow], source: str) -> tuple[int, int]:
        return self.write(lambda conn: _datasets.import_rows(conn, rows, source))

    def dataset_summary(self) -> list[tuple[str, str | None, int]]:
        return self.read(_datasets.dataset_summary)

    def validate_datasets(self, wanted: tuple[str, ...]) -> None:
        """Exit 2 naming the valid datasets if one is unknown; a dataset once found is
        not looked up again (datasets are only ever added), so the loop asks for free."""
        if wanted and not set(wanted) <= self._known_datasets:
            self.read(lambda conn: _datasets.validate_datasets(conn, wanted))
            self._known_datasets.update(wanted)

    def runs(self, record: ProductionRecord, fn: Callable[[RunTable], T], *, write: bool) -> T:
        """Run ``fn`` on the production's RunTable inside one transaction: the unit of work.

        Every call is a transaction of its own, begun and committed here; the caller
        acts on what ``fn`` returns (lines to print, files to remove) once it returns.
        """

        def run(conn: Connection) -> T:
            return fn(RunTable(conn, record, self.statements, writing=write))

        return self.write(run) if write else self.read(run)

    def close_if_done(self, record: ProductionRecord) -> bool:
        return self.write(lambda conn: _productions.close_if_done(conn, record))
