"""Another session holding the database lock: wait and succeed, or exit 75 unchanged."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import Result

from alcapctl.store import DatasetRow, Store
from tests.conftest import ALCAPCTL, digest, run_process, write_toml

_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@contextmanager
def exclusive_lock(db: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A second process holding BEGIN EXCLUSIVE on ``db`` for ``seconds``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_waits_for_a_lock_then_succeeds(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    with exclusive_lock(db_path, 2.0):  # longer than the driver's busy timeout
        result = run_process("claim", prod, "-n", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Claimed run: 2091", "Claimed run: 2092"]
    assert "database locked by another session; waiting" in result.stderr
    assert "Traceback" not in result.stderr


def test_lock_held_too_long_exits_75_unchanged(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    before = digest(db_path)
    with exclusive_lock(db_path, 30.0):
        result = run_process("claim", prod, "-n", "2", "--lock-timeout", "1")
    assert result.returncode == 75, result.stderr
    assert "held the database lock for more than 1 s; nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert digest(db_path) == before
    # Reads wait the same way.
    with exclusive_lock(db_path, 30.0):
        result = run_process("status", prod, "--lock-timeout", "0.5")
    assert result.returncode == 75


def test_a_busy_loop_lets_a_waiting_user_in(tmp_path: Path) -> None:
    """A loop of instant cycles batches them into long transactions; a second user who
    waits for the lock meanwhile still gets it, well before its lock timeout."""
    db = tmp_path / "busy.db"
    store, _ = Store.create(f"sqlite:///{db}")
    store.import_datasets([DatasetRow(r, "SiR2", "gold") for r in range(1, 1501)], "generated")
    store.close()
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in range(1, 1501):
        (archive / f"run{run}.mid").write_text("raw\n")
    site = write_toml(
        tmp_path / "busy-site.toml",
        {
            "database": str(db),
            "data": str(tmp_path / "data"),
            "backend": "local",
            "archive": {"url": f"file://{archive}", "filename": "run{run}.mid"},
        },
    )
    prod = write_toml(
        tmp_path / "busy.toml",
        {
            "type": "alcapana",
            "tag": "busy",
            "site": str(site),
            "limits": {"nproc": 2, "nprep": 4, "pause": 0},
            "job": {"command": "cat {input} > {tree}"},
            "outputs": {"odb": "", "hist": ""},
        },
    )
    assert run_process("init", prod).returncode == 0
    loop = subprocess.Popen(
        [*ALCAPCTL, "-q", "run", str(prod)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        finished = 0
        while finished < 20 and loop.poll() is None:
            with sqlite3.connect(db) as conn:
                finished = conn.execute(
                    "SELECT count(*) FROM alcapana_v1 WHERE status = 'F'"
                ).fetchone()[0]
        claim = run_process(
            "claim", prod, "-n", "1", "--lock-timeout", "30", env={"ALCAPCTL_USER": "other"}
        )
        assert loop.poll() is None, "the loop ended before the other user could claim"
    finally:
        loop.kill()
        loop.wait()
    assert claim.returncode == 0, claim.stderr
    with sqlite3.connect(db) as conn:
        users = conn.execute("SELECT DISTINCT user FROM alcapana_v1 WHERE status = 'C'").fetchall()
    assert ("other",) in users


_FLICKERING_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
print("locked", flush=True)
while True:
    conn.execute("BEGIN EXCLUSIVE")
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    time.sleep(0.01)
"""


def test_lock_timeout_bounds_the_whole_command(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    """A holder that lets go for a moment now and then: every transaction of the command
    gets in within the timeout, but their waits add up, and the command's total is bounded."""
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    before = digest(db_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", _FLICKERING_HOLDER, str(db_path), "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = run_process("claim", prod, "-n", "2", "--lock-timeout", "2")
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert elapsed < 2 + 1.5  # the last try (a quarter second) and the interpreter's start
    if result.returncode != 0:  # the waits of its transactions used up the budget
        assert result.returncode == 75, result.stderr
        assert "held the database lock for more than 2 s; nothing was changed" in result.stderr
        assert digest(db_path) == before


def test_a_patient_wait_outlasts_a_spent_lock_budget(store: Store, db_path: Path) -> None:
    """The abort after a lock timeout waits as long as it takes, though the budget of
    --lock-timeout is spent: the lock freed later, its write lands."""
    store.db.lock_timeout = store.db.lock_budget = 0.1
    with exclusive_lock(db_path, 1.0), store.patient():
        store.import_datasets([DatasetRow(9999, "Late", "gold")], "patient")
    assert store.db.lock_budget == 0.1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT dataset FROM datasets WHERE run = 9999").fetchall() == [
            ("Late",)
        ]
