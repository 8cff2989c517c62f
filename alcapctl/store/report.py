"""Read-only queries behind ``alcapctl report``: one snapshot of productions, runs, failures.

Everything here runs inside ONE read transaction (``BEGIN``, never ``BEGIN IMMEDIATE``) so
a report never takes the write lock and sees a consistent state while others write.  The
tables are reflected rather than taken from ``schema``: a 2014 database that nobody has
migrated yet is reported as it is (missing columns read as NULL), never upgraded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Row, Table, inspect, null, select

from alcapctl.config import OUTPUT_NAMES, Production
from alcapctl.errors import DatabaseError
from alcapctl.store.engine import Database
from alcapctl.store.productions import find
from alcapctl.store.records import Failure, ProductionRecord, RunRecord
from alcapctl.store.runs import RunTable
from alcapctl.store.schema import datasets, failures, productions, table_name

__all__ = ["ReportSnapshot", "read_report"]

# The run-table columns a RunRecord holds, outputs aside.
_RUN_COLUMNS = tuple(f.name for f in fields(RunRecord) if f.name != "outputs")


@dataclass(frozen=True)
class ReportSnapshot:
    """One production as the database held it at one instant."""

    production: ProductionRecord
    runs: list[RunRecord]
    datasets: dict[int, list[str]]  # run -> the datasets it belongs to
    failures: list[Failure] = field(default_factory=list)  # every failed attempt, in order


def read_report(
    url: str, lock_timeout: float, wanted: Production | None
) -> tuple[str, list[ReportSnapshot]]:
    """The database's location and a snapshot of the production a TOML describes, or of
    every production when ``wanted`` is None.

    The rows are fetched in one read transaction and turned into records after it: a
    writer's COMMIT waits for readers, so the transaction lasts only as long as the fetch.
    """
    db = Database(url, lock_timeout=lock_timeout)
    try:
        fetched = db.read(lambda conn: _fetch_all(conn, wanted))
    finally:
        db.dispose()
    return str(db.path or db.url), [_snapshot(*raw) for raw in fetched]


def _reflect(conn: Connection, name: str) -> Table | None:
    """The table with the columns it has, untyped: values come back as stored (timestamps
    as the ISO text the steps wrote, not converted by a reflected TIMESTAMP type)."""
    insp = inspect(conn)
    if not insp.has_table(name):
        return None
    return Table(name, MetaData(), *(Column(c["name"]) for c in insp.get_columns(name)))


_Raw = tuple[ProductionRecord, Sequence[Row[Any]], Sequence[Sequence[Any]], list[Failure]]


def _fetch_all(conn: Connection, wanted: Production | None) -> list[_Raw]:
    p = _reflect(conn, productions.name)
    if p is None:
        raise DatabaseError("the database has no productions table; is it a production database?")
    if wanted is not None:
        records = [find(conn, wanted)]
    else:
        rows = conn.execute(select(p).order_by(p.c.type, p.c.version)).mappings().all()
        records = [
            ProductionRecord.from_row(SimpleNamespace(**{"selection": None, **row}))
            for row in rows
            if row["version"] is not None
        ]
    has_failures = inspect(conn).has_table(failures.name)
    return [_fetch(conn, record, has_failures) for record in records]


def _fetch(conn: Connection, record: ProductionRecord, has_failures: bool) -> _Raw:
    table = _reflect(conn, table_name(record.type, record.version))
    if table is None:
        return record, [], [], []
    # every column of RunRecord; NULL for those a legacy table lacks
    names = (*_RUN_COLUMNS, *OUTPUT_NAMES[record.type])
    columns = [table.c[name] if name in table.c else null().label(name) for name in names]
    runs = conn.execute(select(*columns).order_by(table.c.run)).all()
    d = datasets
    members = (
        select(d.c.run, d.c.dataset)
        .distinct()
        .where(d.c.run.in_(select(table.c.run)), d.c.dataset.is_not(None))
    )
    memberships = conn.execute(members.order_by(d.c.run, d.c.dataset)).all()
    history = RunTable(conn, record).failures() if has_failures else []
    return record, runs, memberships, history


def _snapshot(
    record: ProductionRecord,
    runs: Sequence[Row[Any]],
    memberships: Sequence[Sequence[Any]],
    history: list[Failure],
) -> ReportSnapshot:
    in_datasets: dict[int, list[str]] = defaultdict(list)
    for run, dataset in memberships:
        in_datasets[int(run)].append(str(dataset))
    return ReportSnapshot(
        production=record,
        runs=[RunRecord.from_row(record.type, row._mapping) for row in runs],
        datasets=dict(in_datasets),
        failures=history,
    )
