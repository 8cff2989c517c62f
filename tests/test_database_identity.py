"""A database is what it claims to be: empty, foreign or non-SQLite files are refused
untouched, and a database recreated at the same path never takes old outputs for its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import GOLD_RUNS, RUNLIST, digest
from tests.legacy import make_legacy_db
from tests.local_site import local_site

Cli = Callable[..., Result]


def _runlist(tmp_path: Path) -> Path:
    lines = ["run\tdataset\tquality"]
    lines += [f"{r.run}\t{r.dataset}\t{r.quality or ''}" for r in RUNLIST]
    path = tmp_path / "runs.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT key, value FROM alcapctl_meta").fetchall())


def _foreign(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (name TEXT, taken TIMESTAMP)")
        conn.execute("INSERT INTO photos VALUES ('cat.jpg', '2026-01-01')")
    return path


@pytest.fixture
def prod(tmp_path: Path, make_production: Callable[..., Path], db_path: Path) -> Path:
    site = local_site(tmp_path, db_path, GOLD_RUNS)
    return make_production(
        "id.toml",
        site=str(site),
        datasets=["Al100"],
        limits={"nproc": 3, "pause": 0.05, "grace": 0},
        job={"command": "cat {input} > {tree}; echo hist > {hist}; echo odb > {odb}"},
    )


COMMANDS: list[tuple[str, ...]] = [
    ("status", "{prod}"),
    ("status", "--all"),
    ("check", "{prod}"),
    ("init", "{prod}"),
    ("run", "{prod}", "--once"),
    ("claim", "{prod}"),
    ("recover", "{prod}"),
    ("datasets", "list"),
    ("backup-dump", "--out", "{tmp}/dump"),
]


@pytest.mark.parametrize("kind", ["empty", "foreign", "text"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_file_that_is_no_production_database_is_refused_untouched(
    run_cli: Cli, tmp_path: Path, prod: Path, db_path: Path, kind: str, command: tuple[str, ...]
) -> None:
    if kind == "empty":
        db_path.write_bytes(b"")
    elif kind == "text":
        db_path.write_text("run dataset quality\n2091 SiR2 gold\n")
    else:
        db_path.unlink()
        _foreign(db_path)
    before = digest(db_path)
    files = sorted(tmp_path.iterdir())
    args = [a.format(prod=prod, tmp=tmp_path) for a in command]
    result = run_cli(*args, "--database", db_path)
    assert result.exit_code == 2, result.output
    assert str(db_path) in result.stderr
    assert digest(db_path) == before
    assert sorted(tmp_path.iterdir()) == files


def test_status_all_on_an_unrelated_sqlite_file_adds_no_table(run_cli: Cli, tmp_path: Path) -> None:
    other = _foreign(tmp_path / "other.sqlite")
    before = digest(other)
    result = run_cli("status", "--all", "--database", other)
    assert result.exit_code == 2
    assert f"{other}: not a production database" in result.stderr
    assert digest(other) == before
    with sqlite3.connect(other) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert tables == [("photos",)]


def test_db_init_refuses_foreign_files_and_accepts_empty_legacy_and_own(
    run_cli: Cli, tmp_path: Path
) -> None:
    for foreign in (_foreign(tmp_path / "photos.db"), tmp_path / "notes.txt"):
        if not foreign.exists():
            foreign.write_text("not a database\n")
        before = digest(foreign)
        result = run_cli("db", "init", "--database", foreign)
        assert result.exit_code == 2, result.output
        assert str(foreign) in result.stderr
        assert digest(foreign) == before

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert run_cli("db", "init", "--database", empty).exit_code == 0
    made = _meta(empty)["database_id"]
    assert run_cli("db", "init", "--database", empty).exit_code == 0
    assert _meta(empty)["database_id"] == made  # an existing database keeps its identity

    legacy = make_legacy_db(tmp_path / "legacy.db")
    assert run_cli("status", "--all", "--database", legacy).exit_code == 0  # migrated in place
    assert len(_meta(legacy)["database_id"]) == 36
    assert _meta(legacy)["database_id"] != made


def test_backup_and_restore_keep_the_identity(run_cli: Cli, tmp_path: Path, db_path: Path) -> None:
    dump = tmp_path / "dump"
    assert run_cli("backup-dump", "--out", dump, "--database", db_path).exit_code == 0
    restored = tmp_path / "restored.db"
    assert run_cli("backup-restore", dump, "--database", restored).exit_code == 0
    assert _meta(restored)["database_id"] == _meta(db_path)["database_id"]


def test_a_recreated_database_never_overwrites_the_old_outputs(
    run_cli: Cli, tmp_path: Path, prod: Path, db_path: Path
) -> None:
    assert run_cli("init", prod).exit_code == 0
    ran = run_cli("run", prod)
    assert ran.exit_code == 0, ran.output
    trees = sorted((tmp_path / "data" / "tree" / "v1").iterdir())
    assert len(trees) == 6
    before = {tree: (digest(tree), tree.stat().st_mtime_ns) for tree in trees}

    # The database is lost and made again at the same path: same production, same paths.
    db_path.unlink()
    assert run_cli("db", "init", "--database", db_path).exit_code == 0
    assert run_cli("datasets", "import", _runlist(tmp_path), "--database", db_path).exit_code == 0
    assert run_cli("init", prod).exit_code == 0
    run_cli("run", prod)

    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT run, status, error FROM alcapana_v1").fetchall()
    assert {status for _, status, _ in rows} == {"X"}
    assert all("already exists and was not written by" in error for _, _, error in rows)
    assert {tree: (digest(tree), tree.stat().st_mtime_ns) for tree in trees} == before
