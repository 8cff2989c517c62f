"""Clean-up removes only what this production wrote: abort, recover and Ctrl-C leave the
finished files of another production at the same paths, and say so."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import ALCAPCTL, digest
from tests.local_site import local_site

Cli = Callable[..., Result]
RUNS = list(range(2119, 2125))  # Al100
_DAY = 86400.0


@pytest.fixture
def prod(tmp_path: Path, make_production: Callable[..., Path], db_path: Path) -> Path:
    """A production whose templates, lacking {version}, resolve to an older one's files."""
    site = local_site(tmp_path, db_path, RUNS)
    return make_production(
        "own.toml",
        site=str(site),
        datasets=["Al100"],
        limits={"nproc": 1, "nprep": 5, "pause": 0.05, "grace": 0},
        outputs={"tree": "{data}/tree/tree{run:05d}.root"},
        job={"command": "echo partial > {tree}; sleep 60"},
    )


def _foreign_trees(tmp_path: Path, runs: list[int]) -> dict[Path, str]:
    """Another production's finished trees (a private database, the same data directory)."""
    trees = {}
    for run in runs:
        tree = tmp_path / "data" / "tree" / f"tree{run:05d}.root"
        tree.parent.mkdir(parents=True, exist_ok=True)
        tree.write_text(f"finished physics of run {run}\n")
        os.utime(tree, (time.time() - _DAY, time.time() - _DAY))
        trees[tree] = digest(tree)
    return trees


def _intact(trees: dict[Path, str]) -> bool:
    return all(path.exists() and digest(path) == sha for path, sha in trees.items())


def _staged(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data" / "raw" / "alcapana_v1").glob("*.mid"))


@pytest.mark.parametrize("step", ["abort", "recover"])
def test_abort_and_recover_leave_another_productions_outputs(
    run_cli: Cli, tmp_path: Path, prod: Path, step: str
) -> None:
    trees = _foreign_trees(tmp_path, RUNS)
    assert run_cli("init", prod).exit_code == 0
    assert run_cli("claim", prod, "-n", "6").exit_code == 0
    assert run_cli("stage", prod, "--nprep", "6").exit_code == 0
    assert len(_staged(tmp_path)) == 6
    args = ["--json"] if step == "abort" else ["--lease", "0", "--json"]
    result = run_cli(step, prod, *args)
    assert result.exit_code == 0, result.output
    assert _intact(trees)
    assert _staged(tmp_path) == []  # what this production staged is gone
    if step == "abort":
        assert sorted(json.loads(result.stdout)["kept"]) == sorted(str(t) for t in trees)


def _state(db_path: Path, run: int) -> str:
    with sqlite3.connect(db_path) as conn:
        return str(conn.execute("SELECT status FROM alcapana_v1 WHERE run=?", (run,)).fetchone()[0])


def test_ctrl_c_removes_its_own_partial_output_and_leaves_the_others(
    run_cli: Cli, tmp_path: Path, prod: Path, db_path: Path
) -> None:
    trees = _foreign_trees(tmp_path, RUNS[1:])  # the first run's path is free
    own = tmp_path / "data" / "tree" / f"tree{RUNS[0]:05d}.root"
    assert run_cli("init", prod).exit_code == 0
    proc = subprocess.Popen(
        [*ALCAPCTL, "run", str(prod)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not (own.exists() and _state(db_path, RUNS[0]) == "R"):
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "interrupted: {'N': 6}" in out, err
    assert not own.exists(), out + err  # its own job's partial output
    assert _intact(trees)
    assert _staged(tmp_path) == []
