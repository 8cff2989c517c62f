"""PostgreSQL against SQLite: claims/s under contention, status on 100,000 runs against
``psql``, and the 1,000-run loop with the statements the server ran per run.

The server is a real one started by ``tests/pgserver.py`` (Debian's package, loopback, as
the ``postgres`` user), with ``pg_stat_statements`` preloaded: statements are counted by
the server (``pg_stat_statements`` calls, BEGIN/COMMIT included, and
``pg_stat_database.xact_commit`` for transactions), not by the client.  Where no server
can be started, the PostgreSQL figures are skipped with a line saying why.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import bench_loop, bench_store
from benchmarks.common import ALCAPCTL, make_production, run_quiet, timed
from tests.pgserver import PASSWORD, PgServer, start_server, stop_server

_STATEMENTS = "pg_stat_statements"


@contextmanager
def server() -> Iterator[PgServer | None]:
    """A running server, or None (and a printed reason) where none can be started."""
    try:
        srv = start_server(f"-c shared_preload_libraries={_STATEMENTS}")
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        print(f"PostgreSQL figures skipped: no server could be started ({exc})")
        yield None
        return
    os.environ["PGPASSWORD"] = PASSWORD
    try:
        srv.psql("postgres", f"CREATE EXTENSION IF NOT EXISTS {_STATEMENTS}")
        yield srv
    finally:
        stop_server(srv)


def _database(srv: PgServer) -> tuple[str, str]:
    name = srv.new_database()
    return name, srv.url(name)


def bench_claims(srv: PgServer, runs: int) -> dict[str, dict[str, Any]]:
    """8 processes claiming 15 at a time, on a SQLite file and on the server."""
    _, url = _database(srv)
    return {
        "sqlite": bench_store.bench_claim(runs),
        "postgresql": bench_store.bench_claim(runs, database=url),
    }


def bench_status(srv: PgServer, runs: int) -> dict[str, Any]:
    """``alcapctl status --json`` against ``psql`` running the same GROUP BY, as processes."""
    root = Path(tempfile.mkdtemp(prefix="bench-pg-status-"))
    try:
        name, url = _database(srv)
        _, prod = make_production(
            root, runs, datasets=("SiR2", "Al100", "Al50b", "SiR21pct"), database=url
        )
        srv.psql(name, "UPDATE alcapana_v1 SET status='F' WHERE run % 3 = 0; ANALYZE")
        psql = [str(srv.bindir / "psql"), "-X", "-q", "-A", "-t", "-d", url, "-c"]
        ours = timed(lambda: run_quiet([*ALCAPCTL, "status", prod, "--json"]))
        theirs = timed(lambda: run_quiet([*psql, bench_store.GROUP_BY]))
        return {"runs": runs, "alcapctl_s": ours, "psql_s": theirs}
    finally:
        shutil.rmtree(root)


_KINDS = {  # what the loop's statements are, by how they begin
    "control": "^(BEGIN|COMMIT|ROLLBACK|SET TRANSACTION)",
    "claim": "^WITH candidates",
    "update": "^UPDATE",
    "select": "^SELECT",
}


def _server_counts(srv: PgServer, name: str) -> tuple[int, dict[str, int], int]:
    """(statements, those of each of _KINDS, commits) the server ran in ``name``."""
    time.sleep(0.6)  # backends that just ended flush their statistics
    kinds = "".join(
        f", coalesce(sum(calls) FILTER (WHERE query ~* '{pattern}'), 0)"
        for pattern in _KINDS.values()
    )
    statements = srv.psql(
        "postgres",
        f"SELECT coalesce(sum(calls), 0){kinds} FROM {_STATEMENTS} s "
        f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{name}'",
    )
    commits = srv.psql(
        "postgres", f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{name}'"
    )
    total, *counts = (int(x) for x in statements.strip().split("|"))
    return total, dict(zip(_KINDS, counts, strict=True)), int(commits)


def bench_loop_pg(srv: PgServer, runs: int) -> dict[str, Any]:
    """The run loop's workload (bench_loop) on SQLite and on the server, with the server's
    statements and commits during the ``run`` counted; then on the server alone with
    eight job slots, where a pass moves more runs."""
    root = Path(tempfile.mkdtemp(prefix="bench-pg-loop-sqlite-"))
    try:
        go_sqlite = bench_loop.prepare_alcapctl(root, runs)
        os.sync()
        start = time.perf_counter()
        go_sqlite()
        sqlite_s = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"runs": runs, "sqlite_s": sqlite_s, **_loop_on_server(srv, runs, 2)}


def _loop_on_server(srv: PgServer, runs: int, nproc: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-pg-loop-{nproc}-"))
    try:
        name, url = _database(srv)
        go = bench_loop.prepare_alcapctl(root, runs, database=url, nproc=nproc)
        os.sync()
        before = _server_counts(srv, name)
        srv.psql("postgres", "SELECT pg_stat_statements_reset()")
        start = time.perf_counter()
        go()
        pg_s = time.perf_counter() - start
        total, kinds, commits = _server_counts(srv, name)
        return {
            "postgresql_s": pg_s,
            "statements_per_run": total / runs,
            "kinds_per_run": {kind: n / runs for kind, n in kinds.items()},
            "commits_per_run": (commits - before[2]) / runs,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(quick: bool) -> None:
    """Print every PostgreSQL figure (called by ``benchmarks/run.py``)."""
    with server() as srv:
        if srv is None:
            return
        c = bench_claims(srv, 2_000 if quick else 10_000)
        for dialect, figures in c.items():
            print(
                f"claims, {figures['workers']} processes, {figures['runs']} runs, {dialect}: "
                f"{figures['claims_per_s']:.0f} claims/s, duplicates {figures['duplicates']}"
            )
        s = bench_status(srv, 10_000 if quick else 100_000)
        print(
            f"status on {s['runs']} runs, PostgreSQL: alcapctl status --json "
            f"{s['alcapctl_s']['median'] * 1e3:.0f} ms, psql GROUP BY "
            f"{s['psql_s']['median'] * 1e3:.0f} ms "
            f"(x{s['alcapctl_s']['median'] / s['psql_s']['median']:.1f}, both whole processes)"
        )
        loop = bench_loop_pg(srv, 100 if quick else 1_000)
        kinds = ", ".join(f"{kind} {n:.2f}" for kind, n in loop["kinds_per_run"].items())
        print(
            f"run loop, {loop['runs']} runs: SQLite {loop['sqlite_s']:.2f} s, PostgreSQL "
            f"{loop['postgresql_s']:.2f} s; on the server per run: "
            f"{loop['statements_per_run']:.2f} statements (goal: at most 4; {kinds}), "
            f"{loop['commits_per_run']:.2f} commits (pg_stat_statements, pg_stat_database)"
        )
        wide = _loop_on_server(srv, loop["runs"], 8)
        print(
            f"run loop, {loop['runs']} runs, 8 job slots, PostgreSQL: "
            f"{wide['postgresql_s']:.2f} s, {wide['statements_per_run']:.2f} statements a run"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    report(parser.parse_args().quick)


if __name__ == "__main__":
    main()
