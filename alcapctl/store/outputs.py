"""Which paths productions have recorded as outputs: ``check`` and ``init`` refuse a
production that would write over them, and clean-up never deletes them."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import Connection, inspect, or_, select

from alcapctl.config import OUTPUT_NAMES
from alcapctl.states import RunState
from alcapctl.store.productions import all_productions
from alcapctl.store.records import ProductionRecord

__all__ = ["recorded_elsewhere", "recorded_outputs", "run_numbers"]


def run_numbers(conn: Connection, record: ProductionRecord) -> list[int]:
    """Every run of the production, in order."""
    table = record.table
    return [int(r) for r in conn.execute(select(table.c.run).order_by(table.c.run)).scalars()]


def recorded_outputs(
    conn: Connection, records: Iterable[ProductionRecord]
) -> dict[str, tuple[str, int]]:
    """path -> (production, run) for every output the finished runs of ``records`` recorded."""
    present = set(inspect(conn).get_table_names())
    found: dict[str, tuple[str, int]] = {}
    for record in records:
        if record.name not in present:
            continue
        table = record.table
        columns = [table.c[name] for name in OUTPUT_NAMES.get(record.type, ()) if name in table.c]
        query = select(table.c.run, *columns).where(table.c.status == RunState.FINISHED.value)
        for run, *paths in conn.execute(query):
            found.update((path, (record.name, int(run))) for path in paths if path)
    return found


def recorded_elsewhere(
    conn: Connection, record: ProductionRecord, run: int, paths: Collection[str]
) -> set[str]:
    """Those of ``paths`` that any production's run other than ``run`` of ``record`` has
    recorded as one of its outputs."""
    if not paths:
        return set()
    wanted = list(paths)
    tables = set(inspect(conn).get_table_names())
    found: set[str] = set()
    for other in all_productions(conn):
        if other.type not in OUTPUT_NAMES or other.table.name not in tables:
            continue
        t = other.table
        columns = [t.c[name] for name in OUTPUT_NAMES[other.type]]
        stmt = select(*columns).where(or_(*(c.in_(wanted) for c in columns)))
        if other.name == record.name:
            stmt = stmt.where(t.c.run != run)
        for row in conn.execute(stmt):
            found.update(value for value in row if value in paths)
    return found
