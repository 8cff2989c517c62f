"""Stale-claim recovery and the per-user step lock that keeps cron runs from overlapping."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.steplock import StepBusy, step_lock
from tests.conftest import run_process


def test_step_lock_is_exclusive_per_user(tmp_path: Path) -> None:
    work = tmp_path / "work" / "alcapana_v1"
    with step_lock(work, "alice"):
        with pytest.raises(StepBusy), step_lock(work, "alice"):
            pass
        with step_lock(work, "bob"):  # another user is not blocked
            pass
    with step_lock(work, "alice"):  # released when the holder leaves
        pass


def test_overlapping_cron_step_skips_quietly(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], data_dir: Path
) -> None:
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    lock = data_dir / "work" / "alcapana_v1.tester.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = run_process("claim", prod, "-n", "2")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "another alcapctl of this user is working on this production; skipping" in result.stderr
    assert json.loads(run_process("status", prod, "--json").stdout)["totals"]["C"] == 0


def test_recover_releases_expired_claims_only(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    prod = make_production()
    run_cli("init", prod)
    run_cli("claim", prod, "-n", "3")
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE alcapana_v1 SET lease='2020-01-01 00:00:00' WHERE run IN (2091, 2092)")
    conn.execute("UPDATE alcapana_v1 SET status='R', job_id='7' WHERE run=2092")
    conn.commit()
    result = run_cli("recover", prod)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Released run: 2091 (held by tester@testhost)"]
    rows = dict(conn.execute("SELECT run, status FROM alcapana_v1 WHERE run < 2094"))
    assert rows == {2091: "N", 2092: "R", 2093: "C"}  # R is never reset on a lease alone
    conn.close()


def test_claim_releases_stale_claims_first(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    prod = make_production(limits={"nproc": 1, "nprep": 0})
    run_cli("init", prod)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "UPDATE alcapana_v1 SET status='C', user='ghost', host='dead', "
        "lease='2020-01-01 00:00:00' WHERE run=2091"
    )
    conn.commit()
    result = run_cli("claim", prod)
    assert result.stdout.splitlines() == ["Claimed run: 2091"]
    assert conn.execute("SELECT user FROM alcapana_v1 WHERE run=2091").fetchone() == ("tester",)
    conn.close()
