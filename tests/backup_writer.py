"""A writer process for the consistency test: advances runs, keeping a tally in step.

Each transaction moves every R run to F, S to R, C to S, claims one N run, and sets the
``tally`` row (ticks, finished) in the same transaction, until STOP exists or no N is left.
Usage: python -m tests.backup_writer DATABASE STOP
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sqlalchemy import Connection, text

from alcapctl.states import RunState
from alcapctl.store import RunTable, Store

C, S, R, F = RunState.CLAIMED, RunState.STAGED, RunState.RUNNING, RunState.FINISHED


def main(database: str, stop: Path) -> None:
    store = Store.open(f"sqlite:///{database}")
    record = store.productions()[0]

    def tick(conn: Connection) -> bool:
        table = RunTable(conn, record)
        if not table.count([RunState.NEW]):
            return False
        for old, new in ((R, F), (S, R), (C, S)):
            table.move([r.run for r in table.select([old])], old, new)
        table.claim(1, ("writer", "host"))
        finished = table.count([F])
        conn.execute(text("UPDATE tally SET ticks = ticks + 1, finished = :f"), {"f": finished})
        return True

    while not stop.exists() and store.write(tick):
        time.sleep(0.002)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
