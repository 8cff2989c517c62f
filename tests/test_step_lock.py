"""Every command that changes a production's state takes this user's step lock, through the
one decorator ``@locked_step``: while another process holds it, each refuses at once,
names the holder, and changes nothing in the database or the files."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from alcapctl.cli import cli
from alcapctl.store import DatasetRow, Store
from tests.conftest import snapshot
from tests.faultkit import Kit, step_lock_held, wait_for

# Each command with what makes it do work in the scene below.
LOCKED = {
    "init": ("init",),  # run 3008 was imported after the production was registered
    "claim": ("claim",),
    "stage": ("stage", "--nprep", "5"),
    "submit": ("submit",),
    "reap": ("reap",),  # two jobs ended, not yet reaped
    "retry": ("retry", "--failed"),
    "abort": ("abort",),
    "recover": ("recover", "--lease", "0"),
    "run": ("run", "--once"),
}
# Commands that take no step lock, and why.
UNLOCKED = {
    "status": "reads only",
    "check": "reads only",
    "report": "reads the database; writes only the report file it is given",
    "backup-dump": "reads the database; writes only the dump directory",
    "backup-restore": "builds a new database file, never one in use",
    "db": "db init creates a database: no production in it yet",
    "datasets": "the run list, shared by every production; one transaction per import",
    "stop": "talks to the holder of the lock: taking it would refuse itself",
}


def _add_runs(kit: Kit, *runs: int) -> None:
    store = Store.open(f"sqlite:///{kit.db}")
    store.import_datasets([DatasetRow(run, "Faults", "gold") for run in runs], "test")
    store.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """Runs in every state but F, two ended jobs to reap, a run to register: work for every
    command of LOCKED."""
    root = tmp_path_factory.mktemp("lock")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "ALCAPCTL_USER": "tester",
            "ALCAPCTL_HOST": "testhost",
            "HOME": str(root / "home"),
        }.items():
            env.setenv(name, value)
        env.delenv("ALCAPCTL_DATABASE", raising=False)
        env.delenv("ALCAPCTL_CONFIG", raising=False)
        kit = Kit(root)
        _add_runs(kit, 3007)
        (root / "archive" / "run03005.mid").unlink()  # 3005 will fail for good
        kit.arrange()  # 3001, 3002 R; 3003 S; 3004 C; 3005-3007 N
        kit.open_gate()
        wait_for(lambda: not kit.running_pids(), what="the jobs to end")
        kit.ok("claim", "-n", "1")
        for _ in range(2):  # 3004 staged; 3005's input is missing: X after two attempts
            kit.cli("stage", "--nprep", "5")
        kit.ok("claim", "-n", "1")
        _add_runs(kit, 3008)
        states = {run: status for run, (status, _, _) in kit.rows().items()}
        assert states == {
            3001: "R", 3002: "R", 3003: "S", 3004: "S", 3005: "X", 3006: "C", 3007: "N"
        }  # fmt: skip
        yield kit


@pytest.mark.parametrize("command", list(LOCKED))
def test_a_state_changing_command_refuses_while_the_step_lock_is_held(
    scene: Kit, command: str
) -> None:
    with step_lock_held(scene, "run", str(scene.prod)) as holder:
        before = snapshot(scene.root)
        done = scene.cli(*LOCKED[command])
        after = snapshot(scene.root)
    assert done.returncode == 0, done.stderr  # an overlapping cron step skips quietly
    assert after == before
    message = done.stderr
    assert "another alcapctl of this user is working on this production; skipping" in message
    assert f"pid {holder.pid} on {socket.gethostname()}, since 20" in message
    assert f"alcapctl run {scene.prod}" in message
    _assert_registered_runs(scene.db, 7)


def _assert_registered_runs(db: Path, count: int) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM alcapana_v1").fetchone() == (count,)
    finally:
        conn.close()


def test_every_command_is_either_locked_or_says_why_not() -> None:
    names = set(cli.list_commands(click.Context(cli)))
    assert names == set(LOCKED) | set(UNLOCKED)
    assert not set(LOCKED) & set(UNLOCKED)
