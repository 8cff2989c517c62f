"""A failed attempt's reason says why: when the outputs fill the disk, the elog cannot take
the payload's "No space left on device", and the wrapper's exit record says ENOSPC."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from tests.faultkit import small_tmpfs
from tests.local_site import local_site


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real, tiny file system (tmpfs of 256 KiB); root only."""
    with small_tmpfs(tmp_path / "small", "256k") as mount:
        yield mount


def test_a_full_disk_is_named_in_the_failure(
    run_cli: Callable[..., Result],
    tmp_path: Path,
    make_production: Callable[..., Path],
    db_path: Path,
    full_disk: Path,
) -> None:
    site = local_site(
        tmp_path,
        db_path,
        range(2119, 2125),
        data=str(full_disk),
        work=str(tmp_path / "work"),
        staging=str(tmp_path / "raw"),
    )
    prod = make_production(
        "full.toml",
        site=str(site),
        datasets=["Al100"],
        limits={"nproc": 1, "pause": 0.05, "grace": 0, "max_attempts": 1},
        job={"command": "cat /dev/zero > {tree}"},
    )
    assert run_cli("init", prod).exit_code == 0
    assert run_cli("run", prod).exit_code == 1
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT status, error FROM alcapana_v1").fetchall()
    assert len(rows) == 6
    for status, error in rows:
        assert status == "X"
        assert error.startswith("exit code 1; ENOSPC: no space left on the file system"), error
