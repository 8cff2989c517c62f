"""Read-only queries behind ``alcapctl report``: one snapshot of productions, runs, failures.

Everything here runs inside ONE read transaction (``BEGIN``, never ``BEGIN IMMEDIATE``) so
a report never takes the write lock and sees a consistent state while others write.  The
tables are reflected rather than taken from ``schema``: a 2014 database that nobody has
migrated yet is reported as it is (missing columns read as NULL), never upgraded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, inspect, select

from alcapctl.config import Production
from alcapctl.errors import DatabaseError
from alcapctl.store.engine import Database
from alcapctl.store.productions import find
from alcapctl.store.records import Failure, ProductionRecord
from alcapctl.store.runs import RunTable
from alcapctl.store.schema import datasets, failures, productions, table_name

__all__ = ["ReportRun", "ReportSnapshot", "read_report"]

# The run-table columns a report reads; outputs other than elog are not needed.
_RUN_COLUMNS = (
    "run",
    "status",
    "user",
    "host",
    "claimed",
    "start",
    "stop",
    "attempts",
    "error",
    "elog",
    "job_id",
    "backend",
    "modules_sha256",
)


@dataclass(frozen=True)
class ReportRun:
    """The columns of one run row that a report shows (None where a legacy table lacks one)."""

    run: int
    status: str
    user: str | None = None
    host: str | None = None
    claimed: str | None = None
    start: str | None = None
    stop: str | None = None
    attempts: int = 0
    error: str | None = None
    elog: str | None = None
    job_id: str | None = None
    backend: str | None = None
    modules_sha256: str | None = None


@dataclass(frozen=True)
class ReportSnapshot:
    """One production as the database held it at one instant."""

    production: ProductionRecord
    runs: list[ReportRun]
    datasets: dict[int, list[str]]  # run -> the datasets it belongs to
    failures: list[Failure] = field(default_factory=list)  # every failed attempt, in order


def read_report(
    url: str, lock_timeout: float, wanted: Production | None
) -> tuple[str, list[ReportSnapshot]]:
    """The database's location and a snapshot of the production a TOML describes, or of
    every production when ``wanted`` is None; one read transaction for all."""
    db = Database(url, lock_timeout=lock_timeout)
    try:
        return str(db.path or db.url), db.read(lambda conn: _snapshots(conn, wanted))
    finally:
        db.dispose()


def _reflect(conn: Connection, name: str) -> Table | None:
    """The table with the columns it has, untyped: values come back as stored (timestamps
    as the ISO text the steps wrote, not converted by a reflected TIMESTAMP type)."""
    insp = inspect(conn)
    if not insp.has_table(name):
        return None
    return Table(name, MetaData(), *(Column(c["name"]) for c in insp.get_columns(name)))


def _snapshots(conn: Connection, wanted: Production | None) -> list[ReportSnapshot]:
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
    return [_snapshot(conn, record, has_failures) for record in records]


def _snapshot(conn: Connection, record: ProductionRecord, has_failures: bool) -> ReportSnapshot:
    table = _reflect(conn, table_name(record.type, record.version))
    if table is None:
        return ReportSnapshot(record, [], {})
    present = [table.c[name] for name in _RUN_COLUMNS if name in table.c]
    runs = [_run(row) for row in conn.execute(select(*present).order_by(table.c.run)).mappings()]
    return ReportSnapshot(
        production=record,
        runs=runs,
        datasets=_datasets_of(conn, table.c.run),
        failures=RunTable(conn, record).failures() if has_failures else [],
    )


def _run(row: Mapping[Any, Any]) -> ReportRun:
    values = dict(row)
    values["run"] = int(values["run"])
    values["attempts"] = int(values.get("attempts") or 0)
    values["status"] = str(values["status"] or "")
    return ReportRun(**values)


def _datasets_of(conn: Connection, run_column: Column[Any]) -> dict[int, list[str]]:
    d = datasets
    query = (
        select(d.c.run, d.c.dataset)
        .distinct()
        .where(d.c.run.in_(select(run_column)), d.c.dataset.is_not(None))
        .order_by(d.c.run, d.c.dataset)
    )
    result: dict[int, list[str]] = defaultdict(list)
    for run, dataset in conn.execute(query):
        result[int(run)].append(str(dataset))
    return dict(result)
