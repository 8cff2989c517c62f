"""A production database shaped like a real one, of any size, for report tests and looks.

The rows are what the steps would have written (states, holders, submit and stop times,
the failure history), made in seconds even for 100,000 runs: dataset rows and the
production go through the store's API, the run rows' history is written in one
transaction with the sqlite3 module.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from alcapctl.config import Production
from alcapctl.store import DatasetRow, Store

DATASETS = ("SiR2", "Al100", "Al50", "Ti50")
HOSTS = tuple(f"merlin-c-{n:02d}" for n in range(1, 5))
USERS = ("quirk_j", "litchfield", "edmonds")
SLOTS = 10  # jobs at once per host
# An UPDATE's parameters: status, user, host, start, stop, attempts, backend, run.
_Update = tuple[str, str | None, str | None, str | None, str | None, int, str | None, int]


@dataclass(frozen=True)
class Synthetic:
    """What was written, for tests to compare the report's figures with."""

    name: str
    states: dict[str, int]
    retried: int  # failed attempts of runs that then went on
    final_failures: int  # X runs


def _iso(t: datetime) -> str:
    return t.isoformat(sep=" ")


def build(path: Path, runs: int, seed: int = 1) -> Synthetic:
    """A database at ``path`` holding ``alcapana_v4`` with ``runs`` runs in four datasets."""
    rng = random.Random(seed)
    store, _ = Store.create(f"sqlite:///{path}")
    rows = [DatasetRow(10000 + i, DATASETS[i * len(DATASETS) // runs], "gold") for i in range(runs)]
    store.import_datasets(rows, "synthetic")
    prod = Production.model_validate(
        {"type": "alcapana", "tag": "alcapana_v4_test", "version": 4, "job": {"command": "true"}}
    )
    store.init(prod)
    store.close()
    # started so that the last jobs run now: 20 minutes a job, on every slot at once
    t0 = datetime.now(timezone.utc) - timedelta(minutes=20 * runs / (SLOTS * len(HOSTS)))
    free = {(h, s): t0 for h in HOSTS for s in range(SLOTS)}
    states = {"F": 0, "X": 0, "R": 0, "N": 0, "C": 0, "S": 0}
    updates: list[_Update] = []
    failures: list[tuple[str, int, int, str, str, str, str]] = []
    retried = 0
    end_of_work = runs * 0.95
    for i, row in enumerate(rows):
        run = row.run
        if i >= end_of_work:  # the tail: not yet claimed, or claimed and staging
            state = "N" if i % 3 else ("C" if i % 2 else "S")
            host, user = (None, None) if state == "N" else (HOSTS[0], USERS[0])
            updates.append((state, user, host, None, None, 0, None, run))
            states[state] += 1
            continue
        slot = min(free, key=lambda k: free[k])
        host = slot[0]
        user = USERS[HOSTS.index(host) % len(USERS)]
        start = free[slot] + timedelta(seconds=rng.uniform(1, 20))
        attempts = 0
        while rng.random() < 0.04 and attempts < 2:  # a failed attempt, then a retry
            attempts += 1
            end = start + timedelta(seconds=rng.uniform(5, 120))
            reason = rng.choice(["exit code 3", "TIMEOUT", "lost: no exit file"])
            failures.append(("alcapana_v4", run, attempts, _iso(end), "reap", user, reason))
            retried += 1
            start = end + timedelta(seconds=rng.uniform(5, 30))
        duration = timedelta(seconds=rng.lognormvariate(7.0, 0.35))
        end = start + duration
        free[slot] = end
        if i >= end_of_work - min(SLOTS * len(HOSTS), runs // 20):
            state, stop = "R", None
        elif rng.random() < 0.01 or i % 41 == 7:
            state, stop = "X", _iso(end)
            attempts = 3
            failures.append(("alcapana_v4", run, 3, stop, "reap", user, "exit code 3"))
        else:
            state, stop = "F", _iso(end)
        states[state] += 1
        updates.append((state, user, host, _iso(start), stop, attempts, "local", run))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "UPDATE alcapana_v4 SET status=?, user=?, host=?, start=?, stop=?, attempts=?,"
            " backend=? WHERE run=?",
            updates,
        )
        conn.executemany(
            "INSERT INTO alcapctl_failures (production, run, attempt, at, step, user, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            failures,
        )
    return Synthetic("alcapana_v4", states, retried, states["X"])
