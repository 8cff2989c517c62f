"""Any user can finish a production: R runs of a loop that died for good are taken over
once their lease expired, their jobs recorded, none run twice; abort --user keeps them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import ALCAPCTL, run_process
from tests.local_site import local_site

RUNS = list(range(2119, 2125))  # Al100


@pytest.fixture
def prod(tmp_path: Path, make_production: Callable[..., Path], db_path: Path) -> Path:
    site = local_site(tmp_path, db_path, RUNS)
    ledger = tmp_path / "ran.txt"
    return make_production(
        "dead.toml",
        site=str(site),
        datasets=["Al100"],
        limits={"nproc": 2, "nprep": 1, "pause": 0.05, "grace": 0, "lease": 1},
        outputs={"hist": "", "odb": ""},
        job={"command": f"echo {{run}} >> {ledger}; sleep 1; cat {{input}} > {{tree}}"},
    )


def _rows(db: Path) -> dict[int, tuple[str, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT run, status, user FROM alcapana_v1").fetchall()
    return {run: (status, user) for run, status, user in rows}


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_another_user_finishes_a_dead_runners_production(
    run_cli: Callable[..., Result], tmp_path: Path, prod: Path, db_path: Path
) -> None:
    assert run_cli("init", prod).exit_code == 0
    alice = subprocess.Popen(
        [*ALCAPCTL, "-q", "run", str(prod)],
        env={**os.environ, "ALCAPCTL_USER": "alice"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(
            lambda: Counter(s for s, _ in _rows(db_path).values())["R"] == 2,
            "alice's loop never had two jobs in flight",
        )
        alice.send_signal(signal.SIGKILL)  # dies for good, holding R (and C/S) runs
        alice.wait()
    finally:
        alice.kill()
    held = {run: state for run, (state, user) in _rows(db_path).items() if user == "alice"}
    assert Counter(held.values())["R"] == 2

    bob = run_process("-q", "run", prod, env={"ALCAPCTL_USER": "bob"}, timeout=60)
    assert bob.returncode == 0, bob.stderr
    rows = _rows(db_path)
    assert {state for state, _ in rows.values()} == {"F"}
    ran = Counter(int(line) for line in (tmp_path / "ran.txt").read_text().split())
    assert ran == Counter(RUNS)  # every job ran once: alice's running jobs were not redone


def test_abort_user_keeps_a_job_that_ended_well(
    run_cli: Callable[..., Result],
    tmp_path: Path,
    prod: Path,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run_cli("init", prod).exit_code == 0
    monkeypatch.setenv("ALCAPCTL_USER", "alice")
    for step in ("claim", "stage", "submit"):
        assert run_cli(step, prod).exit_code == 0
    tree = tmp_path / "data" / "tree" / "v1" / "tree02119.root"
    _wait(lambda: any(tmp_path.rglob("alcap-alcapana1-02119-a1/exit")), "alice's job never ended")
    monkeypatch.setenv("ALCAPCTL_USER", "tester")

    aborted = run_cli("abort", prod, "--user", "alice", "--json")
    assert aborted.exit_code == 0, aborted.output
    assert json.loads(aborted.stdout)["finished"] == [2119]
    assert tree.exists()
    assert _rows(db_path)[2119] == ("R", "alice")

    time.sleep(1.1)  # alice's lease expires: anyone's reap records her finished job
    assert run_cli("reap", prod).exit_code == 0
    assert _rows(db_path)[2119] == ("F", "tester")
    assert tree.exists()
