"""Store benchmarks: claims/s under contention, and status on 100k runs vs the sqlite3 CLI."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from alcapctl.config import load_settings
from alcapctl.steps.claim import claim
from alcapctl.steps.context import open_production
from alcapctl.store import Store
from benchmarks.common import ALCAPCTL, make_production, run_quiet, timed


def _claimer(prod: str, user: str, start: Event, out: Queue[list[int]]) -> None:
    os.environ["ALCAPCTL_USER"] = user
    settings = load_settings(Path(prod))
    store = Store.open(settings.database)
    ctx = open_production(settings, store)
    start.wait()
    mine: list[int] = []
    while got := claim(ctx, 15).claimed:
        mine += got
    out.put(mine)


def bench_claim(
    runs: int = 10_000, workers: int = 8, database: str | None = None
) -> dict[str, Any]:
    """``workers`` processes claim 15 runs at a time until none are left (on a SQLite
    file, or on the server database at ``database``)."""
    root = Path(tempfile.mkdtemp(prefix="bench-claim-"))
    try:
        _, prod = make_production(root, runs, database=database)
        ctx = mp.get_context("fork")
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_claimer, args=(str(prod), f"u{i}", start, out))
            for i in range(workers)
        ]
        for p in procs:
            p.start()
        time.sleep(0.5)  # let every worker open the database before the clock starts
        t0 = time.perf_counter()
        start.set()
        claimed = Counter(run for _ in procs for run in out.get())
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join()
        return {
            "runs": runs,
            "workers": workers,
            "seconds": elapsed,
            "claims_per_s": runs / elapsed,
            "claimed": len(claimed),
            "duplicates": sum(n - 1 for n in claimed.values()),
        }
    finally:
        shutil.rmtree(root)


GROUP_BY = (
    "SELECT d.dataset, t.status, count(*) FROM alcapana_v1 t "
    "JOIN (SELECT DISTINCT run, dataset FROM datasets WHERE quality IN ('gold')) d "
    "ON d.run = t.run GROUP BY d.dataset, t.status;"
)


def bench_status(runs: int = 100_000) -> dict[str, Any]:
    """``alcapctl status --json`` vs ``sqlite3`` running the same GROUP BY, as processes."""
    root = Path(tempfile.mkdtemp(prefix="bench-status-"))
    try:
        db, prod = make_production(root, runs, datasets=("SiR2", "Al100", "Al50b", "SiR21pct"))
        run_quiet(["sqlite3", db, "UPDATE alcapana_v1 SET status='F' WHERE run % 3 = 0;"])
        ours = timed(lambda: run_quiet([*ALCAPCTL, "status", prod, "--json"]))
        cli = timed(lambda: run_quiet(["sqlite3", db, GROUP_BY]))
        return {
            "runs": runs,
            "alcapctl_status_s": ours,
            "sqlite3_cli_s": cli,
            "ratio": ours["median"] / cli["median"],
        }
    finally:
        shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--status-runs", type=int, default=100_000)
    args = parser.parse_args()
    c = bench_claim(args.runs)
    print(
        f"claim: {c['workers']} processes, {c['runs']} runs in {c['seconds']:.2f} s = "
        f"{c['claims_per_s']:.0f} claims/s, duplicates {c['duplicates']}"
    )
    s = bench_status(args.status_runs)
    print(
        f"status on {s['runs']} runs: alcapctl {s['alcapctl_status_s']['median'] * 1e3:.0f} ms, "
        f"sqlite3 CLI {s['sqlite3_cli_s']['median'] * 1e3:.0f} ms (x{s['ratio']:.1f})"
    )


if __name__ == "__main__":
    main()
