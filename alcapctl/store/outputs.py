"""Read-only queries for the output-path check of ``check`` and ``init``: a production's
run numbers and the output paths other productions recorded for their finished runs."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, inspect, select

from alcapctl.config import OUTPUT_NAMES
from alcapctl.states import RunState
from alcapctl.store.records import ProductionRecord

__all__ = ["recorded_outputs", "run_numbers"]


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
