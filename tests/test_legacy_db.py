"""A database made by the 2014 scripts opens as is and is migrated in place."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import write_toml
from tests.legacy import FINISHED_V3, MODULES, V4_ROWS, make_legacy_db


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_legacy_database_is_migrated_in_place(
    run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    db = make_legacy_db(tmp_path / "production.db")
    before = sqlite3.connect(db)
    legacy_v3 = before.execute("SELECT * FROM alcapana_v3 ORDER BY run").fetchall()
    legacy_cols = _columns(before, "alcapana_v3")
    before.close()

    result = run_cli("status", "--all", "--json", "--database", db)
    assert result.exit_code == 0, result.output
    reports = {r["production"]["name"]: r for r in json.loads(result.stdout)}
    assert reports["alcapana_v3"]["totals"]["F"] == len(FINISHED_V3)
    assert reports["alcapana_v4"]["totals"] == {"N": 2, "C": 2, "S": 0, "R": 2, "F": 1, "X": 0}

    conn = sqlite3.connect(db)
    # Old readers: the legacy columns come first, unchanged, with their rows.
    assert _columns(conn, "alcapana_v3")[: len(legacy_cols)] == legacy_cols
    old_reader = f"SELECT {', '.join(legacy_cols)} FROM alcapana_v3 ORDER BY run"
    assert conn.execute(old_reader).fetchall() == legacy_v3
    assert {"host", "attempts", "job_id", "lease", "error"} <= set(_columns(conn, "alcapana_v4"))
    assert conn.execute("SELECT count(*) FROM alcapana_v4").fetchone()[0] == len(V4_ROWS)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"ix_alcapana_v3_status", "ix_datasets_run"} <= indexes
    version = conn.execute("SELECT value FROM alcapctl_meta WHERE key='schema_version'")
    assert version.fetchone() == ("2",)
    # The legacy modules text is still there, the old timestamps untouched.
    assert conn.execute("SELECT DISTINCT modules FROM alcapana_v3").fetchall() == [(MODULES,)]
    assert conn.execute("SELECT start FROM productions WHERE version=1").fetchone() == (
        "2014-04-30 00:00:00",
    )
    conn.close()


def test_rootana_on_legacy_base(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "production.db")
    site = write_toml(tmp_path / "site.toml", {"database": str(db), "data": str(tmp_path)})
    prod = write_toml(
        tmp_path / "rootana.toml",
        {
            "type": "rootana",
            "tag": "rootana_v2.1",
            "version": 8,
            "base": 3,
            "site": str(site),
            "job": {"command": "rootana -i {input} -o {out}"},
        },
    )
    result = run_cli("init", prod)
    assert result.exit_code == 0, result.output
    assert "Starting new production, version 8" in result.stdout
    conn = sqlite3.connect(db)
    runs = [r for (r,) in conn.execute("SELECT run FROM rootana_v8 ORDER BY run")]
    assert runs == FINISHED_V3  # only the runs finished in alcapana_v3
    assert conn.execute(
        "SELECT software, base FROM productions WHERE type='rootana'"
    ).fetchall() == [("rootana_v2.1", 3)]
    conn.close()
    result = run_cli("claim", prod, "-n", "2")
    assert result.stdout.splitlines() == ["Claimed run: 2091", "Claimed run: 2092"]


def test_new_alcapana_version_after_legacy(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "production.db")
    site = write_toml(tmp_path / "site.toml", {"database": str(db), "data": str(tmp_path)})
    prod = write_toml(
        tmp_path / "a.toml",
        {"type": "alcapana", "tag": "alcapana_v5", "site": str(site), "job": {"command": "x"}},
    )
    result = run_cli("init", prod)
    assert "Starting new production, version 5" in result.stdout
    conn = sqlite3.connect(db)
    runs = {r for (r,) in conn.execute("SELECT run FROM alcapana_v5")}
    gold = {r for (r,) in conn.execute("SELECT run FROM datasets WHERE quality='gold'")}
    assert runs == gold  # Common (NULL quality) and Al50b (bad) only where gold elsewhere
    assert 2130 not in runs
    # A second init with the same file is a no-op.
    again = run_cli("init", prod)
    assert "already registered" in again.stdout
    assert conn.execute("SELECT count(*) FROM productions WHERE type='alcapana'").fetchone() == (5,)
    conn.close()
