"""Several OS processes claiming from one production: every run claimed exactly once."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from multiprocessing.queues import Queue
from pathlib import Path

from sqlalchemy import text

from alcapctl.config import load_settings
from alcapctl.steps.claim import claim
from alcapctl.steps.context import open_production
from alcapctl.store import DatasetRow, Store
from tests.conftest import write_toml

RUNS = 5000
WORKERS = 8


def _claimer(prod_file: str, user: str, batch: int, out: Queue[tuple[str, list[int]]]) -> None:
    import os

    os.environ["ALCAPCTL_USER"] = user
    settings = load_settings(Path(prod_file), overrides={"nproc": batch, "nprep": 0})
    store = Store.open(settings.database)
    ctx = open_production(settings, store)
    mine: list[int] = []
    while True:
        got = claim(ctx, batch).claimed
        if not got:
            break
        mine += got
    out.put((user, mine))


def test_eight_processes_claim_each_run_once(tmp_path: Path, database_url: str) -> None:
    store, _ = Store.create(database_url)
    store.import_datasets([DatasetRow(r, "SiR2", "gold") for r in range(RUNS)], "generated")
    site = write_toml(tmp_path / "site.toml", {"database": database_url, "data": str(tmp_path)})
    prod = write_toml(
        tmp_path / "p.toml",
        {"type": "alcapana", "tag": "t", "site": str(site), "job": {"command": "true"}},
    )
    production = load_settings(prod).production
    assert production is not None
    store.init(production)

    ctx = mp.get_context("spawn")
    out: Queue[tuple[str, list[int]]] = ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(str(prod), f"user{i}", 7 + i, out))
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    claimed = Counter(run for runs in results.values() for run in runs)
    assert len(claimed) == RUNS
    assert max(claimed.values()) == 1  # nobody claimed a run twice
    assert sum(1 for runs in results.values() if runs) >= 2  # there really was contention

    with store.db.engine.connect() as conn:
        rows = conn.execute(text('SELECT run, status, "user", host FROM alcapana_v1')).all()
    store.close()
    assert len(rows) == RUNS
    assert {status for _, status, _, _ in rows} == {"C"}
    owner = {run: user for user, runs in results.items() for run in runs}
    assert all(owner[run] == user for run, _, user, _ in rows)  # the table agrees with each claimer
