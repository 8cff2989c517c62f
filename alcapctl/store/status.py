"""Read-only queries behind ``alcapctl status``: recent throughput and recent failures.

Timestamps are compared as the ISO text the steps write (UTC, with a zone), which sorts
as time does; legacy rows, zone-less and years old, fall before any recent cutoff.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from alcapctl.states import RunState
from alcapctl.store.records import Failure, ProductionRecord
from alcapctl.store.schema import failures

__all__ = ["finished_since", "recent_failures"]


def finished_since(conn: Connection, record: ProductionRecord, cutoff: str) -> int:
    """Runs of the production that became F at ``cutoff`` or later."""
    t = record.table
    query = select(func.count()).where(
        t.c.status == RunState.FINISHED.value, t.c.stop.is_not(None), t.c.stop >= cutoff
    )
    return int(conn.execute(query).scalar() or 0)


def recent_failures(conn: Connection, record: ProductionRecord, most: int) -> list[Failure]:
    """The production's last ``most`` failed attempts, oldest first."""
    f = failures
    query = (
        select(f)
        .where(f.c.production == record.name)
        .order_by(f.c.at.desc(), f.c.run.desc())
        .limit(most)
    )
    rows = conn.execute(query).all()
    return [
        Failure(r.run, r.attempt, r.at, r.step, r.user, r.job_id, r.exit_code, r.reason)
        for r in reversed(rows)
    ]
