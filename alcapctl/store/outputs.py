"""Which paths productions have recorded as outputs: clean-up never deletes those."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, inspect, or_, select

from alcapctl.config import OUTPUT_NAMES
from alcapctl.store.productions import all_productions
from alcapctl.store.records import ProductionRecord

__all__ = ["recorded_elsewhere"]


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
