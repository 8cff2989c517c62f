"""Another session holding the database lock: wait and succeed, or exit 75 unchanged."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import Result

from tests.conftest import run_process

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


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    before = _digest(db_path)
    with exclusive_lock(db_path, 30.0):
        result = run_process("claim", prod, "-n", "2", "--lock-timeout", "1")
    assert result.returncode == 75, result.stderr
    assert "held the database lock for more than 1 s; nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert _digest(db_path) == before
    # Reads wait the same way.
    with exclusive_lock(db_path, 30.0):
        result = run_process("status", prod, "--lock-timeout", "0.5")
    assert result.returncode == 75
