"""A dump taken while another process claims and finishes runs shows one moment of the DB."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from alcapctl.backup import dump
from alcapctl.backup.files import parse_dump
from alcapctl.config import Job, Production
from alcapctl.store import DatasetRow, Store

RUNS = 400


def _database(path: Path) -> None:
    store, _ = Store.create(f"sqlite:///{path}")
    store.import_datasets([DatasetRow(r, "SiR2", "gold") for r in range(1, RUNS + 1)], "test")
    store.init(Production(type="alcapana", tag="t", job=Job(command="true")))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE tally (ticks INTEGER, finished INTEGER)")
    conn.execute("INSERT INTO tally VALUES (0, 0)")
    conn.commit()
    conn.close()


def _ticks(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=5)
    try:
        return int(conn.execute("SELECT ticks FROM tally").fetchone()[0])
    finally:
        conn.close()


def test_dump_during_writes_is_one_moment(tmp_path: Path) -> None:
    db = tmp_path / "production.db"
    _database(db)
    stop = tmp_path / "stop"
    root = Path(__file__).resolve().parent.parent
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.backup_writer", str(db), str(stop)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    seen = []
    try:
        deadline = time.monotonic() + 60
        while _ticks(db) < 5 and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(6):
            dump(f"sqlite:///{db}", tmp_path / f"dump{i}")
            snapshot = parse_dump(tmp_path / f"dump{i}")
            tables = {t.name: t for t in snapshot.tables}
            ((ticks, finished),) = tables["tally"].rows
            status = tables["alcapana_v1"].columns.index("status")
            states = Counter(row[status] for row in tables["alcapana_v1"].rows)
            assert isinstance(ticks, int)
            # One run each in C, S and R (the writer ran 5 ticks before the first dump).
            expected = {"N": RUNS - ticks, "F": ticks - 3, "C": 1, "S": 1, "R": 1}
            assert states == Counter({k: v for k, v in expected.items() if v})
            assert finished == states["F"]
            seen.append(ticks)
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert seen == sorted(seen) and seen[0] >= 5
